// Package yamledit locates values in YAML files with go.yaml.in/yaml/v3 nodes
// and edits them by splicing the bytes of the original file. A document is
// never re-encoded, so every byte outside an edited value stays as it was:
// comments, key order, quoting, indentation, document separators, line
// endings and byte-order mark.
//
// It owns where images sit in YAML (pod templates, kustomization images,
// Helm values, setter comments) and the splice; what a reference means is
// pkg/imageref's, the one package of this module it imports.
package yamledit
