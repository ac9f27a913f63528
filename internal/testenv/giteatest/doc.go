// Package giteatest runs a real Gitea for the tests of pull-request
// delivery: one `gitea web` on 127.0.0.1 on a free port, in its own temp dir,
// with SQLite and default settings, an admin user and an access token of all
// scopes. It is stopped by PID when the test (or the Suite) ends.
//
//	var gitea giteatest.Suite
//
//	func TestMain(m *testing.M) { gitea.Main(m) }
//
//	func TestOpen(t *testing.T) {
//		srv := gitea.Server(t) // started on first use, shared by the package
//		repo := srv.CreateRepo(t, map[string]string{"app.yaml": "image: nginx:1.0\n"})
//		... drive the binary against repo.CloneURL with srv.Admin / srv.Token ...
//	}
//
// Each test gets its own repositories (and users), so the tests of a package
// share one Gitea and still run in parallel; Start gives a test a Gitea of
// its own.
//
// The gitea binary is built from code.gitea.io/gitea (the version in
// tools/gitea/VERSION) by hack/gitea-build.sh (make tools-gitea), ~5 min cold
// on 2 cores, into a cache that also holds its options/ and templates/ (its
// STATIC_ROOT_PATH). Environment:
//
//	GITOPS_GITEA_BIN  dir holding gitea, with ../options next to it;
//	                  default: the hack/gitea-build.sh cache.
//	CI=true           a missing binary fails the tests instead of skipping them.
//
// It is test infrastructure: imported from _test.go files, e2e/ and the other
// harnesses, never by the code the binary is built of (pkg/..., check, in,
// out).
package giteatest
