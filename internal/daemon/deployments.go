package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/restarter"
)

// statusError is an error with the HTTP status it is answered with.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func statusErrorf(code int, format string, args ...any) error {
	return &statusError{code, fmt.Errorf(format, args...)}
}

var errStopped = statusErrorf(http.StatusServiceUnavailable, "the daemon is shutting down")

// deploy installs spec's binary, saves the spec and hands it to the
// engine. spec.Binary is a path on this host; the copy in the state
// directory is what runs. If the engine refuses the spec, the previous
// version of the deployment (binary and spec) is put back. With
// p.DryRun it checks everything and answers what it would do, changing
// nothing.
func (d *daemon) deploy(ctx context.Context, spec restarter.Spec, p DeployParams) (DeployResult, error) {
	src := spec.Binary
	if !filepath.IsAbs(src) {
		return DeployResult{}, statusErrorf(http.StatusBadRequest, "binary %q: want an absolute path on the daemon's host", src)
	}
	// Validate before using the name in paths.
	spec.Binary = d.state.binPath(spec.Name)
	if err := validate(spec); err != nil {
		return DeployResult{}, &statusError{http.StatusBadRequest, err}
	}

	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.stopped {
		return DeployResult{}, errStopped
	}
	d.mu.Lock()
	prev, hadPrev := d.specs[spec.Name]
	d.mu.Unlock()
	if !p.ShareGroup {
		if err := d.checkGroup(spec); err != nil {
			return DeployResult{}, err
		}
	}
	in, err := openBinary(src)
	if err != nil {
		return DeployResult{}, err
	}
	defer in.Close()
	bin, backup := d.state.binPath(spec.Name), d.state.backupPath(spec.Name)
	res := DeployResult{DryRun: p.DryRun}
	if hadPrev {
		res.Previous = &prev
		if res.BinaryChanged, err = differs(in, bin); err != nil {
			return DeployResult{}, fmt.Errorf("compare the binary with the deployed one: %w", err)
		}
	}
	if p.DryRun {
		full := spec.WithDefaults()
		res.Status = restarter.Status{Name: spec.Name, Topic: full.Topic, Group: full.Group, Pool: full.Pool, Spec: spec}
		return res, nil
	}

	staged, err := d.state.stageBinary(spec.Name, in)
	if err != nil {
		return DeployResult{}, fmt.Errorf("copy the binary: %w", err)
	}
	defer os.Remove(staged) // no-op once renamed into place

	// A link, not a rename: the running version may start processes until
	// the engine has replaced it, so bin must exist throughout.
	_ = os.Remove(backup)
	if err := os.Link(bin, backup); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return DeployResult{}, fmt.Errorf("keep the previous binary: %w", err)
	}
	rollback := func() {
		if !hadPrev {
			_ = d.state.removeDeployment(spec.Name)
			return
		}
		if err := os.Rename(backup, bin); err != nil {
			d.log.Error("cannot put the previous binary back", "deployment", spec.Name, "err", err)
		}
		if err := d.state.saveSpec(prev); err != nil {
			d.log.Error("cannot put the previous spec back", "deployment", spec.Name, "err", err)
		}
	}
	if err := os.Rename(staged, bin); err != nil {
		rollback()
		return DeployResult{}, fmt.Errorf("install the binary: %w", err)
	}
	if err := d.state.saveSpec(spec); err != nil {
		rollback()
		return DeployResult{}, fmt.Errorf("save the deployment: %w", err)
	}
	if err := d.engine.Deploy(ctx, spec); err != nil {
		rollback()
		d.restart(ctx, prev, hadPrev)
		return DeployResult{}, fmt.Errorf("deploy %s: %w", spec.Name, err)
	}
	_ = os.Remove(backup)

	d.mu.Lock()
	d.specs[spec.Name] = spec
	delete(d.failed, spec.Name)
	d.mu.Unlock()
	res.Status = d.statusOf(spec)
	return res, nil
}

// validate checks a spec as the engine will, and its topics and group as
// Kafka will, so a name Kafka would refuse is refused here with a reason.
func validate(spec restarter.Spec) error {
	full := spec.WithDefaults()
	if err := full.Validate(); err != nil {
		return err
	}
	if err := kafka.ValidateTopic(full.Topic); err != nil {
		return err
	}
	if err := kafka.ValidateTopic(full.DeadLetter); err != nil {
		return fmt.Errorf("dead-letter %w", err)
	}
	return kafka.ValidateGroup(full.Group)
}

// checkGroup refuses a spec whose consumer group another deployment has:
// members of one group split a topic's partitions, so each would see only
// part of the messages. A deploy that names the group on purpose passes
// DeployParams.ShareGroup instead.
func (d *daemon) checkGroup(spec restarter.Spec) error {
	group, topic := spec.WithDefaults().Group, spec.Topic
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(d.specs)) {
		other := d.specs[name].WithDefaults()
		if name == spec.Name || other.Group != group {
			continue
		}
		why := fmt.Sprintf("both would consume %s and split its messages between them", topic)
		if other.Topic != topic {
			why = fmt.Sprintf("deployments in one group rebalance together (%s consumes %s)", name, other.Topic)
		}
		return statusErrorf(http.StatusConflict, "consumer group %q is already deployment %q's: %s; "+
			"to share the group on purpose, pass --group %s; for a consumer of its own, pass another --group",
			group, name, why, group)
	}
	return nil
}

// differs reports whether the file at path has other content than f,
// whose offset it leaves at the start. A missing path differs.
func differs(f *os.File, path string) (bool, error) {
	old, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	defer old.Close()
	a, b := sha256.New(), sha256.New()
	if _, err := io.Copy(a, f); err != nil {
		return false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := io.Copy(b, old); err != nil {
		return false, err
	}
	return !bytes.Equal(a.Sum(nil), b.Sum(nil)), nil
}

// openBinary opens the file a deploy request names; what is wrong with it
// is the client's to fix.
func openBinary(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, statusErrorf(http.StatusBadRequest, "binary %s: no such file on the daemon's host", path)
	} else if err != nil {
		return nil, statusErrorf(http.StatusBadRequest, "binary: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, statusErrorf(http.StatusBadRequest, "binary %s is not a regular file", path)
	}
	return f, nil
}

// restart deploys prev again after the engine refused its replacement, in
// case the engine had already stopped it: every saved deployment is either
// in the engine or listed as failed.
func (d *daemon) restart(ctx context.Context, prev restarter.Spec, hadPrev bool) {
	if !hadPrev || slices.ContainsFunc(d.engine.Status(), func(s restarter.Status) bool { return s.Name == prev.Name }) {
		return
	}
	err := d.engine.Deploy(ctx, prev)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.log.Error("cannot deploy the previous version again", "deployment", prev.Name, "err", err)
		d.failed[prev.Name] = err.Error()
	} else {
		delete(d.failed, prev.Name)
	}
}

// remove stops a deployment and deletes its spec, binary and log.
func (d *daemon) remove(ctx context.Context, name string) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.stopped {
		return errStopped
	}
	if !d.known(name) {
		return notFound(name)
	}
	// A failed deployment is not in the engine: removing it is only
	// deleting its files.
	if err := d.engine.Remove(ctx, name); err != nil && !errors.Is(err, restarter.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	d.mu.Lock()
	delete(d.specs, name)
	delete(d.failed, name)
	d.mu.Unlock()
	if err := d.state.removeDeployment(name); err != nil {
		return fmt.Errorf("removed %s, but not its files: %w", name, err)
	}
	d.log.Info("removed", "deployment", name)
	return nil
}

// scale sets a deployment's pool bounds and saves them, so they survive
// a restart.
func (d *daemon) scale(name string, minPool, maxPool int) (restarter.Status, error) {
	if minPool == maxPool && maxPool < 1 {
		return restarter.Status{}, statusErrorf(http.StatusBadRequest, "pool must be at least 1, got %d", maxPool)
	}
	if err := restarter.ValidatePool(minPool, maxPool); err != nil {
		return restarter.Status{}, &statusError{http.StatusBadRequest, err}
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.stopped {
		return restarter.Status{}, errStopped
	}
	d.mu.Lock()
	spec, ok := d.specs[name]
	why, failed := d.failed[name]
	d.mu.Unlock()
	switch {
	case failed:
		return restarter.Status{}, statusErrorf(http.StatusConflict, "deployment %q is not running (%s): deploy it again or remove it", name, why)
	case !ok:
		return restarter.Status{}, notFound(name)
	}
	if err := d.engine.Scale(name, minPool, maxPool); err != nil {
		return restarter.Status{}, fmt.Errorf("scale %s: %w", name, err)
	}
	spec.Pool, spec.MinPool, spec.MaxPool = 0, minPool, maxPool
	if minPool == maxPool {
		spec.Pool = minPool
	}
	d.mu.Lock()
	d.specs[name] = spec
	d.mu.Unlock()
	if err := d.state.saveSpec(spec); err != nil {
		return restarter.Status{}, fmt.Errorf("scaled %s, but could not save it: %w", name, err)
	}
	d.log.Info("scaled", "deployment", name, "min_pool", minPool, "max_pool", maxPool)
	return d.statusOf(spec), nil
}

// list is the engine's statuses plus the saved deployments that failed.
func (d *daemon) list() []restarter.Status {
	out := d.engine.Status()
	d.mu.Lock()
	for name, why := range d.failed {
		spec := d.specs[name].WithDefaults()
		out = append(out, restarter.Status{Name: name, Topic: spec.Topic, Group: spec.Group, Pool: spec.Pool,
			State: StateFailed, Reason: why, Spec: d.specs[name]})
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b restarter.Status) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []restarter.Status{} // JSON [] rather than null
	}
	return out
}

// statusOf is the status of a deployment the engine has just accepted;
// until the engine lists it, it is "starting".
func (d *daemon) statusOf(spec restarter.Spec) restarter.Status {
	for _, s := range d.engine.Status() {
		if s.Name == spec.Name {
			return s
		}
	}
	full := spec.WithDefaults()
	return restarter.Status{Name: spec.Name, Topic: full.Topic, Group: full.Group, Pool: full.Pool, State: "starting", Spec: spec}
}

// known reports whether name is a saved deployment, running or not.
func (d *daemon) known(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, saved := d.specs[name]
	_, failed := d.failed[name]
	return saved || failed
}

func notFound(name string) error {
	return &statusError{http.StatusNotFound, fmt.Errorf("%w: %q", restarter.ErrNotFound, name)}
}
