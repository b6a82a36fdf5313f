package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/microfn/microfn/restarter"
)

// DefaultServer is where the fnctl commands look for the daemon when
// neither --server nor FN_SERVER says otherwise.
const DefaultServer = DefaultListen

// ErrNoDaemon means nothing accepts connections at the daemon's address.
var ErrNoDaemon = errors.New("no fnctl daemon")

// APIError is the daemon's refusal of a request.
type APIError struct {
	// StatusCode is the HTTP status: 400 bad input, 401 a missing or wrong
	// token, 404 an unknown deployment, 409 a conflict, 500 a failure.
	StatusCode int
	Message    string
}

func (e *APIError) Error() string { return e.Message }

// Client calls a daemon's API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the daemon at server, "host:port" or an
// http(s) URL. token is sent as a bearer token when not empty.
func NewClient(server, token string) (*Client, error) {
	raw := server
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid daemon address %q: want host:port or an http URL", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	// Only the context bounds a request: `logs -f` streams for as long as
	// it is wanted, and a deploy waits for the deployment it replaces to
	// finish its in-flight messages, however long their timeout.
	return &Client{base: u, token: token, http: &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
	}}}, nil
}

// Deploy deploys spec, whose Binary is a path on the daemon's host; the
// daemon copies it, so the file may be removed once Deploy returns.
func (c *Client) Deploy(ctx context.Context, spec restarter.Spec, p DeployParams) (DeployResult, error) {
	q := url.Values{}
	if p.DryRun {
		q.Set("dry_run", "1")
	}
	if p.ShareGroup {
		q.Set("share_group", "1")
	}
	path := "/v1/deployments/" + url.PathEscape(spec.Name)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var res DeployResult
	err := c.do(ctx, http.MethodPut, path, spec, &res)
	return res, err
}

// List returns every deployment's status, sorted by name.
func (c *Client) List(ctx context.Context) ([]restarter.Status, error) {
	var sts []restarter.Status
	err := c.do(ctx, http.MethodGet, "/v1/deployments", nil, &sts)
	return sts, err
}

// Remove stops a deployment and deletes it.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/deployments/"+url.PathEscape(name), nil, nil)
}

// Scale sets the bounds of a deployment's pool; minPool = maxPool fixes
// its size.
func (c *Client) Scale(ctx context.Context, name string, minPool, maxPool int) (restarter.Status, error) {
	req := ScaleRequest{MinPool: minPool, MaxPool: maxPool}
	if minPool == maxPool {
		req = ScaleRequest{Pool: minPool}
	}
	var st restarter.Status
	err := c.do(ctx, http.MethodPost, "/v1/deployments/"+url.PathEscape(name)+"/scale", req, &st)
	return st, err
}

// Status returns the daemon's, the broker's and the deployments' state.
func (c *Client) Status(ctx context.Context) (Overview, error) {
	var o Overview
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &o)
	return o, err
}

// Logs copies the last tail lines of a deployment's log to w and, with
// follow, what is appended afterwards until ctx is done.
func (c *Client) Logs(ctx context.Context, name string, follow bool, tail int, w io.Writer) error {
	q := url.Values{"tail": {strconv.Itoa(tail)}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(name)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	return ctx.Err()
}

// do sends a JSON request and decodes the JSON answer into out (unless
// nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon at %s: bad answer to %s %s: %w", c.base.Host, method, path, err)
	}
	return nil
}

// send sends a request and returns a successful response; an error
// response becomes an *APIError.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w at %s (start one with `fnctl up`)", ErrNoDaemon, c.base.Host)
	case err != nil:
		return nil, fmt.Errorf("daemon at %s: %w", c.base.Host, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = fmt.Sprintf("daemon at %s: %s %s: %s", c.base.Host, method, path, resp.Status)
	}
	return nil, &APIError{StatusCode: resp.StatusCode, Message: eb.Error}
}
