package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/restarter"
)

// ServerOptions are the flags of every command that talks to the daemon
// of `fnctl up`.
type ServerOptions struct {
	Server string
	Token  string
}

func addServerFlags(cmd *cobra.Command, o *ServerOptions) {
	cmd.Flags().StringVar(&o.Server, "server", "", "fnctl daemon address (default $"+daemon.EnvServer+" or "+daemon.DefaultServer+")")
	cmd.Flags().StringVar(&o.Token, "token", "", "the daemon's API token (default $"+daemon.EnvToken+")")
}

// client returns a client of the daemon the flags or the environment name.
func (o ServerOptions) client() (*daemon.Client, error) {
	c, err := daemon.NewClient(cmp.Or(o.Server, os.Getenv(daemon.EnvServer), daemon.DefaultServer),
		cmp.Or(o.Token, os.Getenv(daemon.EnvToken)))
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// fromDaemon gives the daemon's answers fnctl's exit codes: bad input
// (HTTP 400) and a conflict with what is deployed (409) are usage errors,
// like input fnctl refuses itself; an unknown deployment (404) is not
// found.
func fromDaemon(err error) error {
	var ae *daemon.APIError
	if errors.As(err, &ae) {
		switch ae.StatusCode {
		case http.StatusBadRequest, http.StatusConflict:
			return usageError{err}
		case http.StatusNotFound:
			return notFoundError{err}
		}
	}
	return err
}

// checkOutput validates -o.
func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usagef("-o must be text or json, got %q", o)
	}
	return nil
}

// printJSON prints v indented, for -o json.
func printJSON(streams IO, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(streams.Out, "%s\n", b)
	return err
}

// poolNow is a deployment's pool size, with its bounds when it follows
// the work: "4", or "2 (0-8)".
func poolNow(s restarter.Status) string {
	if s.Spec.MinPool != s.Spec.MaxPool {
		return fmt.Sprintf("%d (%s)", s.Pool, poolText(s.Spec))
	}
	return fmt.Sprint(s.Pool)
}

// statusLine is one deployment in a sentence, for deploy and scale.
func statusLine(s restarter.Status) string {
	line := fmt.Sprintf("%s: topic %s, group %s, pool %s, %s", s.Name, s.Topic, s.Group, poolNow(s), s.State)
	if s.Reason != "" {
		line += ": " + s.Reason
	}
	return line
}
