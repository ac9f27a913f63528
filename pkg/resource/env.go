package resource

import (
	"net/url"
	"strings"
)

// Env is the build environment Concourse gives a get or put step.
type Env struct {
	BuildID      string
	BuildName    string
	JobName      string
	PipelineName string
	TeamName     string
	InstanceVars string
	ExternalURL  string
}

// EnvFrom reads the BUILD_* variables through getenv (os.Getenv in main).
func EnvFrom(getenv func(string) string) Env {
	return Env{
		BuildID:      getenv("BUILD_ID"),
		BuildName:    getenv("BUILD_NAME"),
		JobName:      getenv("BUILD_JOB_NAME"),
		PipelineName: getenv("BUILD_PIPELINE_NAME"),
		TeamName:     getenv("BUILD_TEAM_NAME"),
		InstanceVars: getenv("BUILD_PIPELINE_INSTANCE_VARS"),
		ExternalURL:  strings.TrimRight(getenv("ATC_EXTERNAL_URL"), "/"),
	}
}

// BuildURL links to the build in the Concourse web UI, or is empty when the
// step runs outside a job (a one-off build still gets its /builds/ID page).
func (e Env) BuildURL() string {
	if e.ExternalURL == "" {
		return ""
	}
	if e.TeamName == "" || e.PipelineName == "" || e.JobName == "" || e.BuildName == "" {
		if e.BuildID == "" {
			return ""
		}
		return e.ExternalURL + "/builds/" + url.PathEscape(e.BuildID)
	}
	u := e.ExternalURL + "/teams/" + url.PathEscape(e.TeamName) +
		"/pipelines/" + url.PathEscape(e.PipelineName) +
		"/jobs/" + url.PathEscape(e.JobName) +
		"/builds/" + url.PathEscape(e.BuildName)
	if e.InstanceVars != "" {
		u += "?vars=" + url.QueryEscape(e.InstanceVars)
	}
	return u
}

// Build names the build for humans: "pipeline/job #12", or "" outside a job.
func (e Env) Build() string {
	if e.JobName == "" {
		return ""
	}
	return e.PipelineName + "/" + e.JobName + " #" + e.BuildName
}

// Trailers are the git commit trailers that link a commit to this build.
func (e Env) Trailers() []Trailer {
	var out []Trailer
	if b := e.Build(); b != "" {
		out = append(out, Trailer{"Concourse-Build", b})
	}
	if u := e.BuildURL(); u != "" {
		out = append(out, Trailer{"Concourse-Build-URL", u})
	}
	return out
}

// Trailer is one "Key: value" line at the end of a commit message.
type Trailer struct{ Key, Value string }

// Metadata is the list Concourse shows beside a version.
type Metadata []MetadataField

// MetadataField is one name/value pair of metadata.
type MetadataField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Add appends a field unless its value is empty.
func (m *Metadata) Add(name, value string) {
	if value != "" {
		*m = append(*m, MetadataField{name, value})
	}
}

// AddBuild appends the fields that trace a result back to its build.
func (m *Metadata) AddBuild(e Env) {
	m.Add("build", e.Build())
	m.Add("build_url", e.BuildURL())
}

// Response is what in and out print on stdout.
type Response struct {
	Version  any      `json:"version"`
	Metadata Metadata `json:"metadata"`
}

// TrailerKey is the commit trailer that marks commits made by this
// resource; its value is the kind. ignore_own_commits looks for it.
const TrailerKey = "Gitops-Resource"
