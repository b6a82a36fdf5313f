package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/microfn/microfn/restarter"
)

// Overview is the answer to GET /v1/status.
type Overview struct {
	Daemon      DaemonInfo         `json:"daemon"`
	Broker      BrokerInfo         `json:"broker"`
	Deployments []restarter.Status `json:"deployments"`
}

// DaemonInfo describes the daemon process.
type DaemonInfo struct {
	PID      int                `json:"pid"`
	StateDir string             `json:"state_dir"`
	Uptime   restarter.Duration `json:"uptime"`
	Version  string             `json:"version"`
}

// DeployParams are the choices of a deploy beyond its spec: the query
// parameters of PUT /v1/deployments/{name}.
type DeployParams struct {
	// DryRun (?dry_run=1) checks the spec and answers what the deploy
	// would do, changing nothing.
	DryRun bool
	// ShareGroup (?share_group=1) lets the spec's consumer group be
	// another deployment's too, which splits a topic's messages between
	// them; without it such a deploy is refused.
	ShareGroup bool
}

// DeployResult is the answer to PUT /v1/deployments/{name}.
type DeployResult struct {
	restarter.Status
	// Previous is the spec of the deployment this one replaced (or, with
	// DryRun, would replace); nil for a new name.
	Previous *restarter.Spec `json:"previous,omitempty"`
	// BinaryChanged: the binary differs from Previous's.
	BinaryChanged bool `json:"binary_changed,omitempty"`
	DryRun        bool `json:"dry_run,omitempty"`
}

// ScaleRequest is the body of POST /v1/deployments/{name}/scale.
// Pool N fixes the size (min = max = N); MaxPool, when set, gives the
// bounds of a pool that follows the work instead.
type ScaleRequest struct {
	Pool    int `json:"pool,omitempty"`
	MinPool int `json:"min_pool,omitempty"`
	MaxPool int `json:"max_pool,omitempty"`
}

// bounds is the pool's min and max the request asks for.
func (r ScaleRequest) bounds() (int, int) {
	if r.MaxPool == 0 && r.MinPool == 0 {
		return r.Pool, r.Pool
	}
	return r.MinPool, r.MaxPool
}

// errorBody is how every API error is answered.
type errorBody struct {
	Error string `json:"error"`
}

// maxBody bounds request bodies: a spec is a few hundred bytes.
const maxBody = 1 << 20

// handler is the API:
//
//	GET    /v1/deployments               []restarter.Status
//	PUT    /v1/deployments/{name}        restarter.Spec → DeployResult; ?dry_run=1, ?share_group=1
//	DELETE /v1/deployments/{name}        204
//	POST   /v1/deployments/{name}/scale  ScaleRequest → restarter.Status
//	GET    /v1/deployments/{name}/logs   text; ?tail=N (default 100), ?follow=1
//	GET    /v1/status                    Overview
//	GET    /metrics                      Prometheus text
//
// Errors are {"error": "..."} with 400 for bad input, 404 for an unknown
// deployment, 409 for an operation that conflicts with what is deployed
// (a deployment's state, another deployment's consumer group).
func (d *daemon) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(d.engine.Status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/deployments", d.handleList)
	mux.HandleFunc("PUT /v1/deployments/{name}", d.handleDeploy)
	mux.HandleFunc("DELETE /v1/deployments/{name}", d.handleRemove)
	mux.HandleFunc("POST /v1/deployments/{name}/scale", d.handleScale)
	mux.HandleFunc("GET /v1/deployments/{name}/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/status", d.handleStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, statusErrorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return d.authorize(mux)
}

// authorize requires the token on every request when one is configured.
func (d *daemon) authorize(next http.Handler) http.Handler {
	if d.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + d.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fnctl"`)
			writeError(w, statusErrorf(http.StatusUnauthorized, "missing or wrong token: pass --token or set %s", EnvToken))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *daemon) handleList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, d.list())
}

func (d *daemon) handleDeploy(w http.ResponseWriter, r *http.Request) {
	var spec restarter.Spec
	if err := readJSON(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if spec.Name == "" {
		spec.Name = name
	} else if spec.Name != name {
		writeError(w, statusErrorf(http.StatusBadRequest, "the spec names %q but the URL %q", spec.Name, name))
		return
	}
	var p DeployParams
	q := r.URL.Query()
	for key, v := range map[string]*bool{"dry_run": &p.DryRun, "share_group": &p.ShareGroup} {
		if s := q.Get(key); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				writeError(w, statusErrorf(http.StatusBadRequest, "%s must be 0 or 1, got %q", key, s))
				return
			}
			*v = b
		}
	}
	// A deploy that has begun finishes even if the client goes away, so
	// the state directory and the engine stay in step.
	res, err := d.deploy(context.WithoutCancel(r.Context()), spec, p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (d *daemon) handleRemove(w http.ResponseWriter, r *http.Request) {
	if err := checkName(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	if err := d.remove(context.WithoutCancel(r.Context()), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *daemon) handleScale(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := checkName(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	if req.Pool != 0 && (req.MinPool != 0 || req.MaxPool != 0) {
		writeError(w, statusErrorf(http.StatusBadRequest, "give pool, or min and max pool, not both"))
		return
	}
	minPool, maxPool := req.bounds()
	st, err := d.scale(r.PathValue("name"), minPool, maxPool)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (d *daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Overview{
		Daemon: DaemonInfo{
			PID:      os.Getpid(),
			StateDir: d.state.root,
			Uptime:   restarter.Duration(time.Since(d.started).Round(time.Second)),
			Version:  version(),
		},
		Broker:      d.brokerInfo(r.Context()),
		Deployments: d.list(),
	})
}

// checkName refuses a name no deployment can have, so that it is told
// apart from a valid name that is not deployed.
func checkName(name string) error {
	if err := restarter.ValidateName(name); err != nil {
		return &statusError{http.StatusBadRequest, err}
	}
	return nil
}

// readJSON decodes a request body strictly: an unknown field is more
// likely a client from another version than something to ignore.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return statusErrorf(http.StatusBadRequest, "request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var se *statusError
	switch {
	case errors.As(err, &se):
		code = se.code
	case errors.Is(err, restarter.ErrNotFound):
		code = http.StatusNotFound
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}
