package health

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// pod judges a Pod applied on its own (a workload's pods are judged
// through their workload). A Pod that runs to completion (restartPolicy
// Never or OnFailure) is ready once Succeeded, as a Job is; any other once
// Running and Ready. Phase Failed fails it with the pod's and its
// containers' reasons, and so does a container that will not start without
// a change (PodProblem). kstatus counts a Failed pod as current; a put that
// ran a one-off pod wants to know it failed.
func pod(obj *unstructured.Unstructured, _ time.Time) Status {
	p, err := convert[corev1.Pod](obj)
	if err != nil {
		return badObject(err)
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return Status{Current, "Succeeded: every container completed"}
	case corev1.PodFailed:
		return Status{Failed, PodState(p)}
	}
	if why := PodProblem(p); why != "" {
		return Status{Failed, why}
	}
	if p.Spec.RestartPolicy == corev1.RestartPolicyNever || p.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		return Status{InProgress, fmt.Sprintf("%s, waiting for it to complete (restartPolicy %s)", PodState(p), p.Spec.RestartPolicy)}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return Status{Current, "Running and Ready"}
		}
	}
	return Status{InProgress, PodState(p)}
}

// failingReasons are container states that do not heal without a change.
var failingReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "CrashLoopBackOff": true,
	"CreateContainerConfigError": true, "InvalidImageName": true, "CreateContainerError": true,
}

// PodProblem returns why pod will not become ready by itself ("container
// app: ImagePullBackOff: ..."), or "" when nothing is known to be wrong.
func PodProblem(pod *corev1.Pod) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil && failingReasons[w.Reason] {
				return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, strings.TrimSpace(w.Message))
			}
		}
	}
	return ""
}

// PodState describes a pod for a failure report: its phase (with the
// pod's reason and message, as an eviction gives), unmet conditions, and
// each container's waiting or terminated reason.
func PodState(pod *corev1.Pod) string {
	phase := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		phase += " " + pod.Status.Reason
	}
	if pod.Status.Message != "" {
		phase += ": " + strings.TrimSpace(pod.Status.Message)
	}
	parts := []string{phase}
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Reason != "" {
			parts = append(parts, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			switch {
			case cs.State.Waiting != nil:
				parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
			case cs.State.Terminated != nil:
				t := cs.State.Terminated
				parts = append(parts, fmt.Sprintf("container %s terminated: %s (exit %d) %s", cs.Name, t.Reason, t.ExitCode, t.Message))
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				parts = append(parts, fmt.Sprintf("container %s last terminated: %s (exit %d), %d restarts", cs.Name, t.Reason, t.ExitCode, cs.RestartCount))
			}
		}
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, "; ")
}
