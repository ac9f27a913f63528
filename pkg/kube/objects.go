package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/gitops-resource/gitops-resource/pkg/kustomize"
)

// Ref names an object the way every message does: Kind/namespace/name, or
// Kind/name for cluster-scoped objects.
func Ref(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + "/" + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetName()
}

// Load reads the objects at name, a path under root (the build dir): a
// YAML/JSON file, a dir holding a kustomization (built with kustomize), a
// dir of YAML/JSON files (read recursively in name order, hidden entries
// skipped), or a .tar/.tgz of either. Everything is read through root, so
// nothing read resolves outside it: a symlink that leads out fails the
// load, one that stays inside is followed. Errors name the file.
func Load(root *os.Root, name string) ([]*unstructured.Unstructured, error) {
	info, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() && isArchive(name) {
		return loadArchive(root, name)
	}
	if !info.IsDir() {
		data, err := root.ReadFile(name)
		if err != nil {
			return nil, err
		}
		return Decode(data, filepath.Base(name))
	}
	for _, k := range kustomize.Files {
		if _, err := root.Stat(filepath.Join(name, k)); err == nil {
			return Kustomize(root, name)
		}
	}
	top := filepath.ToSlash(name)
	var files []string
	err = fs.WalkDir(root.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != top && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(path.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := root.ReadFile(filepath.FromSlash(f))
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(top, f)
		objs, err := Decode(data, rel)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Kustomize builds the kustomization in dir, under root, with kustomize's
// krusty API, reading only through root (pkg/kustomize).
func Kustomize(root *os.Root, dir string) ([]*unstructured.Unstructured, error) {
	data, err := kustomize.Build(root, dir)
	if err != nil {
		return nil, err
	}
	return Decode(data, "kustomize build output")
}

// Decode reads a stream of YAML (or JSON) documents; name says where they
// came from in errors. Empty documents are skipped, List kinds are expanded.
func Decode(data []byte, name string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: document %d is not valid YAML: %v", name, i, err)
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		var m map[string]any
		// utiljson keeps integers int64, as the API machinery expects.
		if err := utiljson.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d is not an object: %v", name, i, err)
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		if obj.IsList() {
			list, err := obj.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %v", name, i, err)
			}
			for j := range list.Items {
				out = append(out, &list.Items[j])
			}
			continue
		}
		out = append(out, obj)
	}
	var errs []error
	seen := map[string]bool{}
	for i, obj := range out {
		switch {
		case obj.GetAPIVersion() == "" || obj.GetKind() == "":
			errs = append(errs, fmt.Errorf("%s: object %d has no apiVersion or kind", name, i+1))
		case obj.GetName() == "":
			errs = append(errs, fmt.Errorf("%s: %s %d has no metadata.name (generateName cannot be applied)", name, obj.GetKind(), i+1))
		default:
			key := obj.GroupVersionKind().GroupKind().String() + "/" + obj.GetNamespace() + "/" + obj.GetName()
			if seen[key] {
				errs = append(errs, fmt.Errorf("%s: %s appears twice", name, Ref(obj)))
			}
			seen[key] = true
		}
	}
	return out, errors.Join(errs...)
}

// Well-known group kinds.
var (
	gkCRD         = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	gkNamespace   = schema.GroupKind{Kind: "Namespace"}
	gkDeployment  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkStatefulSet = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	gkDaemonSet   = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkJob         = schema.GroupKind{Group: "batch", Kind: "Job"}
)

func groupKind(obj *unstructured.Unstructured) schema.GroupKind {
	return obj.GroupVersionKind().GroupKind()
}

// IsWorkload reports whether obj rolls out pods (Deployment, StatefulSet,
// DaemonSet).
func IsWorkload(obj *unstructured.Unstructured) bool {
	switch groupKind(obj) {
	case gkDeployment, gkStatefulSet, gkDaemonSet:
		return true
	}
	return false
}

// podSpecPath is where each kind keeps its pod spec.
func podSpecPath(obj *unstructured.Unstructured) []string {
	switch groupKind(obj) {
	case gkDeployment, gkStatefulSet, gkDaemonSet, gkJob,
		schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, schema.GroupKind{Kind: "ReplicationController"}:
		return []string{"spec", "template", "spec"}
	case schema.GroupKind{Group: "batch", Kind: "CronJob"}:
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	case schema.GroupKind{Kind: "Pod"}:
		return []string{"spec"}
	}
	return nil
}

// Container is one container of a pod spec.
type Container struct {
	Name, Image string
	Init        bool
}

// Containers lists the containers (init containers first) of obj's pod
// spec, or nothing for kinds without one.
func Containers(obj *unstructured.Unstructured) []Container {
	path := podSpecPath(obj)
	if path == nil {
		return nil
	}
	var out []Container
	for _, field := range []string{"initContainers", "containers"} {
		list, _, _ := unstructured.NestedSlice(obj.Object, append(append([]string{}, path...), field)...)
		for _, c := range list {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			name, _ := m["name"].(string)
			image, _ := m["image"].(string)
			out = append(out, Container{Name: name, Image: image, Init: field == "initContainers"})
		}
	}
	return out
}

// Images lists the distinct images of obj's pod spec, in order.
func Images(obj *unstructured.Unstructured) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range Containers(obj) {
		if c.Image != "" && !seen[c.Image] {
			seen[c.Image] = true
			out = append(out, c.Image)
		}
	}
	return out
}
