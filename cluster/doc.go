// Command cluster runs kind cluster. check, in and out start it in their
// place for a request of kind cluster (see pkg/app): in the image it is
// /opt/resource/cluster, beside them, and it takes the verb from argv[0].
//
// It imports pkg/app/clusterapp and no other package of this module.
package main
