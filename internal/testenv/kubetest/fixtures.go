package kubetest

import "fmt"

// Deployment is the YAML of the workload the tests deliver: a Deployment
// name of replicas pods, labelled app: name, with one container "app"
// running image. image is written as given, so it may carry a trailing
// comment for the byte-preserving editor to keep.
func Deployment(name, image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: app
        image: %[2]s
`, name, image, replicas)
}
