package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// throwawayDatabase is the database created in the throwaway cluster.
const throwawayDatabase = "fleetflow"

// findPostgresBinaries returns the directory holding both initdb and
// postgres: the one of initdb on PATH first (following symlinks), then
// /usr/lib/postgresql/<version>/bin, highest version first.
func findPostgresBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { return compareVersions(b, a) })
	dirs = append(dirs, versions...)
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found (initdb and postgres, on PATH or in /usr/lib/postgresql/<version>/bin): " +
		"install them with `apt-get install postgresql` or set DATABASE_URL")
}

// compareVersions orders /usr/lib/postgresql/<version>/bin paths by version.
func compareVersions(a, b string) int {
	va := strings.Split(filepath.Base(filepath.Dir(a)), ".")
	vb := strings.Split(filepath.Base(filepath.Dir(b)), ".")
	for i := 0; i < len(va) || i < len(vb); i++ {
		var x, y int
		if i < len(va) {
			x, _ = strconv.Atoi(va[i])
		}
		if i < len(vb) {
			y, _ = strconv.Atoi(vb[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// postgresUser is who runs the throwaway cluster: nil (this process's user)
// unless this process is root, then `postgres` if it exists, else `nobody`.
func postgresUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &runAs{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root and neither a `postgres` nor a `nobody` user exists: " +
		"create one (`useradd -r postgres`), run as a normal user, or set DATABASE_URL")
}

// startPostgres creates a throwaway cluster under stateDir (or a separate
// temporary directory if the run-as user cannot reach stateDir), starts it
// on 127.0.0.1:port, waits for it and creates the fleetflow database.
//
// The server runs as a direct child (not daemonized by pg_ctl), so that it
// is in this stack's process group bookkeeping and gets a parent-death
// signal: a crashed parent does not leave clusters behind.
func (s *Stack) startPostgres(ctx context.Context, binDir string, port int, stateDir string) error {
	who, err := postgresUser()
	if err != nil {
		return err
	}
	parent := stateDir
	if who != nil && !traversableBy(stateDir, who) {
		// e.g. a StateDir under /root: keep the data where the user can reach it.
		if parent, err = os.MkdirTemp("", "fleetflow-pg-"); err != nil {
			return fmt.Errorf("creating the throwaway database directory: %w", err)
		}
		s.removeDirs = append(s.removeDirs, parent)
		if err := os.Chmod(parent, 0o755); err != nil {
			return fmt.Errorf("making %s reachable for user %s: %w", parent, who.name, err)
		}
	}
	dataDir := filepath.Join(parent, "pgdata")
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("clearing an old throwaway database: %w", err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the throwaway database directory: %w", err)
	}
	s.pgDataDir = dataDir
	if who != nil {
		if err := os.Chown(dataDir, int(who.uid), int(who.gid)); err != nil {
			return fmt.Errorf("handing %s to user %s: %w", dataDir, who.name, err)
		}
	}

	initLog := filepath.Join(stateDir, "initdb.log")
	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-A", "trust", "-U", "postgres", "-D", dataDir, "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir = dataDir
	initdb.Env = pgEnv()
	runningAs := ""
	if who != nil {
		runningAs = " (as user " + who.name + ")"
	}
	s.log.Info("creating throwaway PostgreSQL cluster"+runningAs, "dir", dataDir, "bin", binDir)
	if err := runLogged("initdb"+runningAs, initdb, initLog, who); err != nil {
		return err
	}

	logPath := filepath.Join(stateDir, "postgres.log")
	s.pgServer = func() (*proc, error) {
		server := exec.Command(filepath.Join(binDir, "postgres"),
			"-D", dataDir, "-p", strconv.Itoa(port), "-k", dataDir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
		server.Dir = dataDir
		server.Env = pgEnv()
		// SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
		return startProc("postgresql", server, logPath, syscall.SIGINT, syscall.SIGINT, who)
	}
	p, err := s.pgServer()
	if err != nil {
		return err
	}
	s.postgres = p

	admin := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", hostPort(port))
	if err := waitPostgres(ctx, p, admin); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to the throwaway PostgreSQL: %w", err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+throwawayDatabase)
	_ = conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("creating database %s: %w", throwawayDatabase, err)
	}
	s.DatabaseURL = fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", hostPort(port), throwawayDatabase)
	s.log.Info("throwaway PostgreSQL ready at "+s.DatabaseURL, "log", logPath)
	return nil
}

// waitPostgres pings until the server answers, exits or the timeout passes.
func waitPostgres(ctx context.Context, p *proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, postgresReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("throwaway PostgreSQL exited during start (%v)%s", p.waitErr, logTail(p.logPath, 20))
		}
		if lastErr = pingDatabase(ctx, url, time.Second); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if ctxErr := context.Cause(ctx); ctxErr != context.DeadlineExceeded {
				return fmt.Errorf("waiting for the throwaway PostgreSQL: %w", ctxErr)
			}
			return fmt.Errorf("throwaway PostgreSQL not ready after %s (last error: %v)%s", postgresReadyTimeout, lastErr, logTail(p.logPath, 20))
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pingDatabase connects to url and pings, within timeout.
func pingDatabase(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// pgEnv is the environment of initdb and postgres: this process's, minus
// the PG* client variables that could redirect them, with a C locale.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// traversableBy reports whether every directory from / down to dir can be
// entered by who (by the "other" execute bit, or owner or group match).
func traversableBy(dir string, who *runAs) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return false
		}
		if !searchable(fi, who) {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}
