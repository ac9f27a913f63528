// Command out is the Concourse out script of every kind. In the image one
// binary answers to check, in and out (hard links), and hands a request of
// kind cluster to the cluster binary beside it: see pkg/app.
//
// It imports pkg/app and no other package of this module: a main is a few
// lines, and everything else is importable and tested in-process.
package main
