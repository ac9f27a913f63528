package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestManagedObjects(t *testing.T) {
	ks := obj(t, `
status:
  inventory:
    entries:
    - {id: web_web__ConfigMap, v: v1}
    - {id: web_web_apps_Deployment, v: v1}
    - {id: _web__Namespace, v: v1}
    - {id: broken, v: v1}
`)
	var got []string
	for _, o := range fluxInventory(ks) {
		got = append(got, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	require.Equal(t, []string{"v1 ConfigMap web/web", "apps/v1 Deployment web/web", "v1 Namespace /web"}, got)

	app := obj(t, `
status:
  resources:
  - {group: apps, version: v1, kind: Deployment, namespace: web, name: web, status: Synced}
  - {version: v1, kind: Service, namespace: web, name: web}
`)
	got = nil
	for _, o := range argoResources(app) {
		got = append(got, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	require.Equal(t, []string{"apps/v1 Deployment web/web", "v1 Service web/web"}, got)
}
