package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/microfn/microfn/restarter"
)

// ErrLocked means another daemon holds the state directory: two daemons
// sharing one would run every deployment twice and overwrite each other's
// files.
var ErrLocked = errors.New("another fnctl daemon is using the state directory")

// stateDir is an opened, locked state directory (layout in the package
// documentation). Deployment names are validated before they are used in
// paths, and never start with '.', which is how temporary files start.
type stateDir struct {
	root string
	lock *os.File
}

// openState creates the layout under root and takes its lock without
// waiting, so a second daemon fails at once.
func openState(root string) (*stateDir, error) {
	s := &stateDir{root: root}
	for _, dir := range []string{root, s.brokerDir(), s.specDir(), s.binDir(), s.logDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	path := filepath.Join(root, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(holder))); err == nil {
				return nil, fmt.Errorf("%w %s (pid %d)", ErrLocked, root, pid)
			}
			return nil, fmt.Errorf("%w %s", ErrLocked, root)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only for the message above; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lock = f
	return s, nil
}

// close releases the lock.
func (s *stateDir) close() error { return s.lock.Close() }

func (s *stateDir) brokerDir() string { return filepath.Join(s.root, "broker") }
func (s *stateDir) specDir() string   { return filepath.Join(s.root, "deployments") }
func (s *stateDir) binDir() string    { return filepath.Join(s.root, "bin") }
func (s *stateDir) logDir() string    { return filepath.Join(s.root, "logs") }

func (s *stateDir) specPath(name string) string { return filepath.Join(s.specDir(), name+".json") }
func (s *stateDir) binPath(name string) string  { return filepath.Join(s.binDir(), name) }
func (s *stateDir) logPath(name string) string  { return filepath.Join(s.logDir(), name+".log") }

// backupPath is where a deployment's previous binary waits while a new
// version is deployed, to be put back if the engine refuses it.
func (s *stateDir) backupPath(name string) string { return filepath.Join(s.binDir(), "."+name+".prev") }

// saveSpec writes a deployment's spec atomically, so a crash leaves the
// old spec or the new one, never half of one.
func (s *stateDir) saveSpec(spec restarter.Spec) error {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.specPath(spec.Name), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// loadSpecs reads every saved spec. bad maps the names of unreadable spec
// files to why; err is for a directory that cannot be read at all.
func (s *stateDir) loadSpecs() (specs []restarter.Spec, bad map[string]error, err error) {
	entries, err := os.ReadDir(s.specDir())
	if err != nil {
		return nil, nil, fmt.Errorf("saved deployments: %w", err)
	}
	bad = map[string]error{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.specDir(), e.Name()))
		var spec restarter.Spec
		if err == nil {
			err = json.Unmarshal(b, &spec)
		}
		if err == nil && spec.Name != name {
			err = fmt.Errorf("it names deployment %q", spec.Name)
		}
		if err != nil {
			bad[name] = fmt.Errorf("spec file %s: %w", e.Name(), err)
			continue
		}
		specs = append(specs, spec)
	}
	return specs, bad, nil
}

// stageBinary copies a binary into the bin directory under a temporary
// name, executable, and returns that name; the caller renames it into
// place.
func (s *stateDir) stageBinary(name string, in io.Reader) (string, error) {
	f, err := os.CreateTemp(s.binDir(), "."+name+".new-*")
	if err != nil {
		return "", err
	}
	if err := fill(f, 0o755, func(w io.Writer) error { _, err := io.Copy(w, in); return err }); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// removeDeployment deletes a deployment's spec file, binary and log, so
// that a later deployment of the same name starts with none of it.
func (s *stateDir) removeDeployment(name string) error {
	var errs []error
	for _, p := range []string{s.specPath(name), s.binPath(name), s.backupPath(name), s.logPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeAtomic writes path through a temporary file in the same directory
// and a rename.
func writeAtomic(path string, perm os.FileMode, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if err := fill(f, perm, write); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// fill writes f, sets its mode, syncs and closes it.
func fill(f *os.File, perm os.FileMode, write func(io.Writer) error) error {
	err := write(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
