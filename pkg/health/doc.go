// Package health answers one question about a live Kubernetes object: is it
// ready, failed, or still on its way, and why. One file per kind holds that
// kind's rule and its fixtures live in testdata/<kind>/: the workloads
// judged as `kubectl rollout status` judges them (deployment.go,
// statefulset.go, daemonset.go), a Job's completion (job.go), a bare Pod
// (pod.go), a PersistentVolumeClaim (pvc.go), a Service (service.go), an
// Ingress (ingress.go), a CRD (crd.go), kstatus's conventions for any other
// object (generic.go), and the judges of what an agent reports for a commit:
// a Flux Kustomization, HelmRelease and HelmChart, an Argo CD Application
// (flux_*.go, argocd_application.go).
//
// A Judge reads the object as the API server returns it and the time it
// judges at; it never calls the API server. Watching an object until its
// judge says done is kube.Wait's job, reading related objects (pods, events)
// for a failure report too: computing a status, reading and watching are
// kept apart, as in cli-utils' kstatus.
//
//	st := health.For(obj.GroupVersionKind().GroupKind())(obj, time.Now())
//	if st.State == health.Failed { ... st.Message ... }
//
// Messages quote the object's status as it is: a caller that writes them
// out masks a Secret's data quoted in them (kube.MaskSecretData).
//
// It is a shared package below pkg/kube: it imports no package of this
// module.
package health
