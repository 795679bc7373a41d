package main

// Process-level tests: the real lintel binary, built once per test binary,
// run as subprocesses against the embedded PostgreSQL (in a data directory
// of the test's own) or against a test database (testdb.URL).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/pgembed"
	"github.com/lintel/lintel/internal/testdb"
)

// ---------------------------------------------------------------------------
// The binary

var (
	procBuildOnce sync.Once
	procBinPath   string
	procBuildErr  error
)

// procBinary builds ./cmd/lintel once per test binary and returns its path.
// It goes next to the test binary when that lives in go test's scratch
// directory (which go test removes afterwards); otherwise into a temporary
// directory of its own.
func procBinary(t *testing.T) string {
	t.Helper()
	procBuildOnce.Do(func() {
		dir := ""
		if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
			dir = filepath.Dir(exe)
			if f, err := os.CreateTemp(dir, "probe-*"); err == nil {
				f.Close()
				os.Remove(f.Name())
			} else {
				dir = ""
			}
		}
		if dir == "" {
			if dir, procBuildErr = os.MkdirTemp("", "lintel-proctest-bin-*"); procBuildErr != nil {
				return
			}
		}
		procBinPath = filepath.Join(dir, "lintel-proctest")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", procBinPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			procBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if procBuildErr != nil {
		t.Fatalf("building lintel: %v", procBuildErr)
	}
	return procBinPath
}

// procEnv is the test's environment without any Lintel configuration, plus
// extra.
func procEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LINTEL_") || k == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	if _, ok := extra["LINTEL_MASTER_KEY"]; !ok && extra["DATABASE_URL"] != "" {
		env = append(env, "LINTEL_MASTER_KEY="+testMasterKey)
	}
	if _, ok := extra["LINTEL_SHUTDOWN_DRAIN"]; !ok {
		// No load balancer watches these processes' /readyz: stop at once
		// (the rolling-restart test sets a drain of its own).
		env = append(env, "LINTEL_SHUTDOWN_DRAIN=0s")
	}
	return env
}

// procBuffer collects a child's output; safe for concurrent use.
type procBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (p *procBuffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.Write(b)
}

func (p *procBuffer) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.String()
}

// procFreeAddr returns a loopback address with a port that was free a
// moment ago.
func procFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// procDataDir returns a not yet existing data directory inside a fresh
// temporary directory that the postgres user can reach (t.TempDir is 0700).
// The whole directory is removed at cleanup, after every postgres working in
// it is gone.
func procDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lintel-proctest-*")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	dir, err = filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Registered first, so it runs after the processes' cleanups.
		deadline := time.Now().Add(15 * time.Second)
		for len(procPostgresUnder(dir)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		for _, pid := range procPostgresUnder(dir) {
			t.Errorf("postgres pid %d still runs in %s at cleanup; killing it", pid, dir)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.RemoveAll(dir)
	})
	return filepath.Join(dir, "data")
}

// procPostgresUnder lists the live postgres processes (postmaster and
// backends) whose working directory is dir or below: a postmaster chdirs
// into its cluster and its children inherit that.
func procPostgresUnder(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil { // gone, or a zombie
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ---------------------------------------------------------------------------
// Processes

// procServer is a `lintel serve` child process.
type procServer struct {
	t       *testing.T
	name    string
	addr    string
	Base    string // http://host:port, once serving
	cmd     *exec.Cmd
	stdout  *procBuffer
	stderr  *procBuffer
	done    chan struct{} // closed once the process has exited
	waitErr error
}

// procStart starts `lintel serve --addr <free port> args...` with the
// given environment and returns without waiting for it to serve. At
// cleanup a still running process gets SIGTERM, then SIGKILL.
func procStart(t *testing.T, name string, env map[string]string, args ...string) *procServer {
	t.Helper()
	return procStartAt(t, name, procFreeAddr(t), env, args...)
}

// procStartAt is procStart on a given address (a restart on the port of a
// process that has exited).
func procStartAt(t *testing.T, name, addr string, env map[string]string, args ...string) *procServer {
	t.Helper()
	bin := procBinary(t)
	p := &procServer{t: t, name: name, addr: addr, stdout: &procBuffer{}, stderr: &procBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	p.cmd.Env = procEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Errorf("%s: still running 20s after SIGTERM; killing it", p.name)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s (pid %d) stdout:\n%s", p.name, p.cmd.Process.Pid, procTail(p.stdout.String()))
			t.Logf("%s (pid %d) stderr:\n%s", p.name, p.cmd.Process.Pid, procTail(p.stderr.String()))
		}
	})
	return p
}

// procServe starts a server and waits until it serves.
func procServe(t *testing.T, name string, env map[string]string, args ...string) *procServer {
	t.Helper()
	p := procStart(t, name, env, args...)
	p.waitServing()
	return p
}

func procTail(s string) string {
	const max = 8000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

func (p *procServer) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitServing waits for the "serving" line naming our address (a fresh
// embedded cluster includes initdb, hence the generous timeout).
func (p *procServer) waitServing() {
	p.t.Helper()
	want := "Lintel is serving GraphQL at http://" + p.addr + "/graphql\n"
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(p.stdout.String(), want) {
		if p.exited() {
			p.t.Fatalf("%s exited before serving (%v)\nstdout:\n%s\nstderr:\n%s", p.name, p.waitErr, p.stdout, procTail(p.stderr.String()))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s is not serving after 90s\nstdout:\n%s\nstderr:\n%s", p.name, p.stdout, procTail(p.stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Base = "http://" + p.addr
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal killed it); it fails the test after timeout.
func (p *procServer) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v\nstderr:\n%s", p.name, timeout, procTail(p.stderr.String()))
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *procServer) signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// procWaitReady waits for /readyz to answer 200: the event listener
// connects in the background after the server starts serving.
func procWaitReady(t *testing.T, p *procServer) {
	t.Helper()
	start := time.Now()
	var last string
	for {
		resp, body := procGet(t, p.Base+"/readyz", nil)
		if resp.StatusCode == http.StatusOK {
			if d := time.Since(start); d > time.Second {
				t.Logf("%s: ready %v after serving", p.name, d.Round(time.Millisecond))
			}
			return
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: /readyz still %s after 10s", p.name, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// anonymous is a GraphQL client of the process without a token.
func (p *procServer) anonymous() *gqlClient {
	return &gqlClient{t: p.t, URL: p.Base + "/graphql", http: http.DefaultClient}
}

// login logs in and returns a client with the access (and refresh) token.
func (p *procServer) login(email, password string) *gqlClient {
	p.t.Helper()
	c := p.anonymous()
	res := c.do(procLoginMutation, vars{"e": email, "p": password}).requireOK(p.t)
	c.Token, c.RefreshToken = res.str("login.accessToken"), res.str("login.refreshToken")
	require.NotEmpty(p.t, c.Token)
	return c
}

const procLoginMutation = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }`

var (
	procEmailLine    = regexp.MustCompile(`(?m)^\s*e-mail:\s+(\S+)\s*$`)
	procPasswordLine = regexp.MustCompile(`(?m)^\s*password:\s+(\S+)\s*$`)
)

// bootstrapCredentials returns the e-mail and one-time password printed on
// first start, or empty strings.
func (p *procServer) bootstrapCredentials() (email, password string) {
	out := p.stdout.String()
	if m := procEmailLine.FindStringSubmatch(out); m != nil {
		email = m[1]
	}
	if m := procPasswordLine.FindStringSubmatch(out); m != nil {
		password = m[1]
	}
	return email, password
}

// procRun runs a one-shot lintel command and returns its output and exit
// code.
func procRun(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, procBinary(t), args...)
	cmd.Env = procEnv(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("lintel %s: %v", strings.Join(args, " "), err)
	}
	require.NoError(t, ctx.Err(), "lintel %s timed out", strings.Join(args, " "))
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// procMustRun runs a command that must succeed.
func procMustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, code := procRun(t, env, args...)
	require.Equal(t, 0, code, "lintel %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out
}

// procGet fetches a URL and returns the response with its body read.
func procGet(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// ---------------------------------------------------------------------------
// graphql-transport-ws

func procWSDial(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseNow() })
	require.Equal(t, "graphql-transport-ws", conn.Subprotocol())
	return conn
}

func procWSSend(t *testing.T, conn *websocket.Conn, msg any) {
	t.Helper()
	b, err := json.Marshal(msg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, b))
}

// procWSRead returns the next message that is not a ping (pings are
// answered), or the read error (a close is an error).
func procWSRead(t *testing.T, conn *websocket.Conn, timeout time.Duration) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "message: %s", b)
		if m["type"] == "ping" {
			procWSSend(t, conn, map[string]any{"type": "pong"})
			continue
		}
		return m, nil
	}
}

// procWSInit opens a connection and sends connection_init with the token.
func procWSInit(t *testing.T, base, authorization string) *websocket.Conn {
	t.Helper()
	conn := procWSDial(t, base)
	payload := map[string]any{}
	if authorization != "" {
		payload["Authorization"] = authorization
	}
	procWSSend(t, conn, map[string]any{"type": "connection_init", "payload": payload})
	return conn
}

// procMetric returns the value of an unlabelled metric on /metrics.
func procMetric(t *testing.T, base, name string) (float64, bool) {
	t.Helper()
	resp, body := procGet(t, base+"/metrics", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err)
			return f, true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// 1. First start, graceful stop, second start

func TestProcessFirstStartStopAndRestart(t *testing.T) {
	t.Parallel()
	data := procDataDir(t)

	first := procServe(t, "first serve", nil, "--data-dir", data)
	email, password := first.bootstrapCredentials()
	require.Equal(t, "admin@lintel.local", email, "stdout:\n%s", first.stdout)
	require.GreaterOrEqual(t, len(password), 12, "a one-time password is printed; stdout:\n%s", first.stdout)
	require.Contains(t, first.stdout.String(), `First start: created organisation "Default organisation"`)

	admin := first.login(email, password)
	me := admin.do(`{ me { email role organisation { name } } }`, nil).requireOK(t)
	require.Equal(t, "admin@lintel.local", me.str("me.email"))
	require.Equal(t, "ADMIN", me.str("me.role"))
	require.Equal(t, "Default organisation", me.str("me.organisation.name"))
	tid := admin.createTemplate(staffTemplate)
	require.NotEmpty(t, procPostgresUnder(filepath.Dir(data)), "the embedded postgres runs in the data directory")

	// SIGTERM: a graceful stop that takes the embedded PostgreSQL along.
	stopAt := time.Now()
	first.signal(syscall.SIGTERM)
	require.Equal(t, 0, first.wait(20*time.Second), "exit code after SIGTERM; stderr:\n%s", procTail(first.stderr.String()))
	require.Less(t, time.Since(stopAt), 10*time.Second, "graceful shutdown is prompt")
	require.Empty(t, procPostgresUnder(filepath.Dir(data)), "no postgres survives a graceful stop")
	require.NoFileExists(t, filepath.Join(data, "pg", "postmaster.pid"), "postgres shut down cleanly")

	second := procServe(t, "second serve", nil, "--data-dir", data)
	require.NotContains(t, second.stdout.String(), "password", "the bootstrap happens once; stdout:\n%s", second.stdout)
	require.NotContains(t, second.stdout.String(), "First start")
	admin = second.login(email, password)
	res := admin.do(`query($id: ID!) { template(id: $id) { id name } }`, vars{"id": tid}).requireOK(t)
	require.Equal(t, "Staff", res.str("template.name"), "the template survives the restart")

	second.signal(syscall.SIGINT)
	require.Equal(t, 0, second.wait(20*time.Second), "exit code after SIGINT")
	require.Empty(t, procPostgresUnder(filepath.Dir(data)))
}

// ---------------------------------------------------------------------------
// 2. kill -9 recovery

func TestProcessRecoversAfterKill9(t *testing.T) {
	t.Parallel()
	data := procDataDir(t)

	first := procServe(t, "serve before kill -9", nil, "--data-dir", data)
	email, password := first.bootstrapCredentials()
	admin := first.login(email, password)
	tid := admin.createTemplate(staffTemplate)
	rid := admin.addRecord(tid, "4711", "kim@example.com", "Kim")

	first.signal(syscall.SIGKILL)
	require.Equal(t, -1, first.wait(10*time.Second), "killed by a signal")

	// Restart at once: the postmaster and its backends may still be going
	// down (SIGQUIT is their parent-death signal), holding the shared
	// memory and the pid file.
	second := procServe(t, "serve after kill -9", nil, "--data-dir", data)
	require.NotContains(t, second.stdout.String(), "First start")
	admin = second.login(email, password)
	res := admin.do(`query($id: ID!) { record(id: $id) { cardId uniqueIdentifier status } }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, "4711", res.str("record.cardId"), "the committed record survives kill -9")
	require.Equal(t, "kim@example.com", res.str("record.uniqueIdentifier"))
	require.Equal(t, "ACTIVE", res.str("record.status"))
	// And the recovered cluster takes writes.
	admin.addRecord(tid, "4712", "lee@example.com", "Lee")
}

// TestProcessClearsWhatAPreviousRunLeftBehind covers the two leftovers the
// next start has to deal with: a postmaster still running on the cluster
// (its lintel died and the parent-death signal was lost; simulated by a
// postgres the test starts itself, as lintel would, on the cluster), and a
// stale postmaster.pid whose pid now belongs to an unrelated live process
// (PostgreSQL alone would refuse to start then).
func TestProcessClearsWhatAPreviousRunLeftBehind(t *testing.T) {
	t.Parallel()
	data := procDataDir(t)
	cluster := filepath.Join(data, "pg")

	first := procServe(t, "first serve", nil, "--data-dir", data)
	email, password := first.bootstrapCredentials()
	admin := first.login(email, password)
	tid := admin.createTemplate(staffTemplate)
	rid := admin.addRecord(tid, "815", "orphan@example.com", "Olga")
	first.signal(syscall.SIGTERM)
	require.Equal(t, 0, first.wait(20*time.Second))
	binDir := ""
	for _, l := range strings.Split(first.stderr.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(l), &entry) == nil && entry["msg"] == "postgres started" {
			binDir, _ = entry["bin_dir"].(string)
		}
	}
	require.NotEmpty(t, binDir, "the log names the PostgreSQL binaries")

	// A postmaster left behind.
	pgUser, err := user.Lookup("postgres")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	orphan := exec.Command(filepath.Join(binDir, "postgres"), "-D", cluster,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strings.Split(procFreeAddr(t), ":")[1], "-c", "unix_socket_directories=")
	orphan.Dir = cluster
	orphan.Env = []string{"LC_ALL=C"}
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	orphanOut := &procBuffer{}
	orphan.Stdout, orphan.Stderr = orphanOut, orphanOut
	require.NoError(t, orphan.Start())
	orphanDone := make(chan struct{})
	go func() { _ = orphan.Wait(); close(orphanDone) }()
	t.Cleanup(func() {
		_ = orphan.Process.Kill()
		<-orphanDone
	})
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(cluster, "postmaster.pid"))
		lines := strings.Split(string(b), "\n")
		return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(orphan.Process.Pid) && strings.TrimSpace(lines[7]) == "ready"
	}, 20*time.Second, 20*time.Millisecond, "the stand-in orphan postmaster is up; its output:\n%s", orphanOut)

	second := procServe(t, "serve next to an orphan", nil, "--data-dir", data)
	select {
	case <-orphanDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphaned postmaster is still running")
	}
	require.Contains(t, second.stderr.String(), "stopping postgres left behind by a previous lintel process")
	admin = second.login(email, password)
	res := admin.do(`query($id: ID!) { record(id: $id) { cardId } }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, "815", res.str("record.cardId"))

	// kill -9: the parent-death signal takes postgres down.
	pidFile := filepath.Join(cluster, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	second.signal(syscall.SIGKILL)
	second.wait(10 * time.Second)
	require.Eventually(t, func() bool { return len(procPostgresUnder(filepath.Dir(data))) == 0 }, 15*time.Second, 20*time.Millisecond,
		"postgres follows its killed lintel")

	// A postmaster.pid as a crash of the postmaster itself leaves it,
	// whose pid now names an unrelated live process.
	sleeper := exec.Command("sleep", "60")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	_, rest, _ := strings.Cut(string(b), "\n")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"+rest), 0o600))

	third := procServe(t, "serve after pid reuse", nil, "--data-dir", data)
	admin = third.login(email, password)
	res = admin.do(`query($id: ID!) { record(id: $id) { cardId } }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, "815", res.str("record.cardId"))
	require.Nil(t, sleeper.ProcessState, "the unrelated process is left alone")
	require.NoError(t, sleeper.Process.Signal(syscall.Signal(0)), "the unrelated process is left alone")
}

// ---------------------------------------------------------------------------
// 3. One owner per data directory

func TestProcessSecondServerOnTheSameDataDirFailsFast(t *testing.T) {
	t.Parallel()
	data := procDataDir(t)
	owner := procServe(t, "owner", nil, "--data-dir", data)

	started := time.Now()
	intruder := procStart(t, "intruder", nil, "--data-dir", data)
	code := intruder.wait(15 * time.Second)
	require.NotEqual(t, 0, code, "a second server on the same data directory must fail")
	require.Less(t, time.Since(started), 10*time.Second, "and fail fast")
	msg := intruder.stderr.String()
	require.Contains(t, msg, "data directory")
	require.Contains(t, msg, "in use")
	require.Contains(t, msg, data, "the message names the directory")
	require.Contains(t, msg, "pid "+strconv.Itoa(owner.cmd.Process.Pid), "and the owner")
	require.NotContains(t, intruder.stdout.String(), "Lintel is serving")

	// An administrative command is refused the same way.
	out, errOut, code := procRun(t, nil, "operator", "list", "--data-dir", data)
	require.NotEqual(t, 0, code, "stdout:\n%s", out)
	require.Contains(t, errOut, "in use")

	// The owner is unharmed.
	procWaitReady(t, owner)
	owner.anonymous().do(`{ __typename }`, nil).requireOK(t)
}

// ---------------------------------------------------------------------------
// 4. Subscriptions across processes

func TestProcessRecordChangedAcrossTwoServers(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testdb.URL(t)}
	// Both start at once on an empty database: the bootstrap and the
	// shared signing key must cope with a concurrent replica.
	a := procStart(t, "server A", env)
	b := procStart(t, "server B", env)
	a.waitServing()
	b.waitServing()
	procWaitReady(t, a)
	procWaitReady(t, b)
	boots := 0
	for _, p := range []*procServer{a, b} {
		if strings.Contains(p.stdout.String(), "First start") {
			boots++
		}
	}
	require.Equal(t, 1, boots, "exactly one replica bootstraps")

	const pw = "process test password 1"
	out := procMustRun(t, env, "operator", "create", "--email", "admin@acme.test", "--role", "ADMIN", "--org", "Acme", "--password", pw)
	require.Contains(t, out, `created ADMIN operator admin@acme.test in "Acme"`)
	require.NotContains(t, out, "one-time password")

	onA := a.login("admin@acme.test", pw)
	tid := onA.createTemplate(staffTemplate)

	conn := procWSInit(t, b.Base, "Bearer "+onA.Token)
	ack, err := procWSRead(t, conn, 5*time.Second)
	require.NoError(t, err, "a token issued by A is good on B")
	require.Equal(t, "connection_ack", ack["type"], "message: %v", ack)
	procWSSend(t, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId record { cardId version } } }`,
		"variables": map[string]any{"t": tid},
	}})
	// The protocol has no acknowledgement of subscribe; B's gauge says
	// when the subscription is registered.
	require.Eventually(t, func() bool {
		v, ok := procMetric(t, b.Base, "lintel_subscribers")
		return ok && v == 1
	}, 5*time.Second, 20*time.Millisecond, "subscription registered on B")

	next := func(kind, recordID string) map[string]any {
		t.Helper()
		msg, err := procWSRead(t, conn, 5*time.Second)
		require.NoError(t, err, "waiting for %s", kind)
		require.Equal(t, "next", msg["type"], "message: %v", msg)
		payload, _ := msg["payload"].(map[string]any)
		require.Nil(t, payload["errors"], "message: %v", msg)
		data, _ := payload["data"].(map[string]any)
		change, _ := data["recordChanged"].(map[string]any)
		require.NotNil(t, change, "message: %v", msg)
		require.Equal(t, kind, change["kind"], "message: %v", msg)
		require.Equal(t, recordID, change["recordId"])
		rec, _ := change["record"].(map[string]any)
		return rec
	}

	rid := onA.addRecord(tid, "1001", "ada@acme.test", "Ada")
	rec := next("CREATED", rid)
	require.NotNil(t, rec)
	require.Equal(t, "1001", rec["cardId"])
	require.Equal(t, float64(1), rec["version"])

	res := onA.do(`mutation($id: ID!, $v: Int!, $in: RecordPatch!) { updateRecord(id: $id, version: $v, input: $in) { version } }`,
		vars{"id": rid, "v": 1, "in": vars{"cardId": "1002"}}).requireOK(t)
	v2 := res.num("updateRecord.version")
	require.Greater(t, v2, 1)
	rec = next("UPDATED", rid)
	require.NotNil(t, rec)
	require.Equal(t, "1002", rec["cardId"])
	require.Equal(t, float64(v2), rec["version"], "the subscriber sees the new version")

	res = onA.do(`mutation($id: ID!) { archiveRecord(id: $id) { version status } }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, "ARCHIVED", res.str("archiveRecord.status"))
	rec = next("UPDATED", rid)
	require.NotNil(t, rec)
	require.Equal(t, float64(res.num("archiveRecord.version")), rec["version"])

	res = onA.do(`mutation($id: ID!) { deleteRecord(id: $id) }`, vars{"id": rid}).requireOK(t)
	require.Equal(t, rid, res.str("deleteRecord"))
	rec = next("DELETED", rid)
	require.Nil(t, rec, "a deleted record is null")

	// Nothing else arrives.
	msg, err := procWSRead(t, conn, 300*time.Millisecond)
	require.Error(t, err, "unexpected message: %v", msg)
}

// ---------------------------------------------------------------------------
// 5. WebSocket authentication

func TestProcessWebSocketAuthentication(t *testing.T) {
	t.Parallel()
	srv := procServe(t, "serve", map[string]string{"DATABASE_URL": testdb.URL(t)})
	admin := srv.login(srv.bootstrapCredentials())

	requireClosed := func(t *testing.T, conn *websocket.Conn, code websocket.StatusCode, within time.Duration) {
		t.Helper()
		msg, err := procWSRead(t, conn, within)
		require.Error(t, err, "expected the socket to close, got %v", msg)
		require.Equal(t, code, websocket.CloseStatus(err), "err: %v", err)
	}

	t.Run("a valid token is acknowledged", func(t *testing.T) {
		t.Parallel()
		conn := procWSInit(t, srv.Base, "Bearer "+admin.Token)
		msg, err := procWSRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "connection_ack", msg["type"])
	})
	t.Run("a bad token is closed with 4403", func(t *testing.T) {
		t.Parallel()
		requireClosed(t, procWSInit(t, srv.Base, "Bearer not-a-token"), 4403, 5*time.Second)
	})
	t.Run("a token with a tampered signature is closed with 4403", func(t *testing.T) {
		t.Parallel()
		// Flip a character of the signature.
		tok := []byte(admin.Token)
		if tok[len(tok)-2] == 'A' {
			tok[len(tok)-2] = 'B'
		} else {
			tok[len(tok)-2] = 'A'
		}
		requireClosed(t, procWSInit(t, srv.Base, "Bearer "+string(tok)), 4403, 5*time.Second)
	})
	t.Run("connection_init without a token is closed with 4403", func(t *testing.T) {
		t.Parallel()
		requireClosed(t, procWSInit(t, srv.Base, ""), 4403, 5*time.Second)
	})
	t.Run("no connection_init is closed after the init timeout", func(t *testing.T) {
		t.Parallel()
		conn := procWSDial(t, srv.Base)
		start := time.Now()
		msg, err := procWSRead(t, conn, 15*time.Second)
		require.Error(t, err, "expected a close, got %v", msg)
		require.NotEqual(t, websocket.StatusCode(-1), websocket.CloseStatus(err), "closed by the server, not by our timeout: %v", err)
		require.GreaterOrEqual(t, time.Since(start), 9*time.Second)
	})
}

// ---------------------------------------------------------------------------
// 6. The administrative commands

func TestProcessAdministrativeCommands(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testdb.URL(t)}

	t.Run("migrate", func(t *testing.T) {
		ups, err := filepath.Glob("../../migrations/*.up.sql")
		require.NoError(t, err)
		require.NotEmpty(t, ups)
		status := func() map[string]string {
			t.Helper()
			out := procMustRun(t, env, "migrate", "status")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.True(t, strings.HasPrefix(lines[0], "MIGRATION"), "output:\n%s", out)
			got := map[string]string{}
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				require.GreaterOrEqual(t, len(f), 2, "line %q", l)
				got[f[0]] = strings.Join(f[1:], " ")
			}
			require.Len(t, got, len(ups), "one line per migration; output:\n%s", out)
			for _, up := range ups {
				version, _, _ := strings.Cut(filepath.Base(up), "_")
				found := false
				for name := range got {
					found = found || strings.HasPrefix(name, version)
				}
				require.True(t, found, "migration %s listed; output:\n%s", version, out)
			}
			return got
		}
		for name, st := range status() {
			require.True(t, strings.HasPrefix(st, "applied"), "%s: %s", name, st)
		}

		out := procMustRun(t, env, "migrate", "down")
		require.Contains(t, out, "rolled back")
		for name, st := range status() {
			require.Equal(t, "pending", st, name)
		}
		require.Contains(t, procMustRun(t, env, "migrate", "up"), "database is up to date")
		for name, st := range status() {
			require.True(t, strings.HasPrefix(st, "applied"), "%s: %s", name, st)
		}
		require.Contains(t, procMustRun(t, env, "migrate", "up"), "database is up to date", "up is idempotent")
	})

	t.Run("migrate usage errors exit 2", func(t *testing.T) {
		_, errOut, code := procRun(t, env, "migrate", "sideways")
		require.Equal(t, 2, code, "stderr:\n%s", errOut)
		require.Contains(t, errOut, `unknown migrate action "sideways"`)
		_, errOut, code = procRun(t, env, "migrate")
		require.Equal(t, 2, code, "stderr:\n%s", errOut)
		_, errOut, code = procRun(t, nil, "frobnicate")
		require.Equal(t, 2, code, "stderr:\n%s", errOut)
		require.Contains(t, errOut, "usage:")
	})

	t.Run("a bad migrate action is refused before touching any database", func(t *testing.T) {
		// A usage error must not depend on the database: pointed at a
		// database that is down, `migrate sideways` is still exit 2.
		down := map[string]string{"DATABASE_URL": "postgres://lintel:x@" + procFreeAddr(t) + "/lintel?sslmode=disable&connect_timeout=2"}
		_, errOut, code := procRun(t, down, "migrate", "sideways")
		require.Equal(t, 2, code, "stderr:\n%s", errOut)
		require.Contains(t, errOut, `unknown migrate action "sideways"`)
	})

	const pw1, pw2 = "first password of ops", "second password of ops"
	out := procMustRun(t, env, "operator", "create", "--email", "ops@acme.test", "--role", "OPERATOR", "--org", "Acme", "--password", pw1, "--name", "Ops Person")
	require.Contains(t, out, `created OPERATOR operator ops@acme.test in "Acme"`)
	out = procMustRun(t, env, "operator", "create", "--email=viewer@acme.test", "--role=VIEWER", "--org=Acme")
	m := regexp.MustCompile(`one-time password: (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "a generated password is printed once; output:\n%s", out)
	viewerPassword := m[1]

	_, errOut, code := procRun(t, env, "operator", "create", "--email", "ops@acme.test", "--role", "OPERATOR", "--org", "Acme", "--password", pw1)
	require.NotEqual(t, 0, code, "a duplicate operator is refused")
	require.NotEmpty(t, errOut)
	_, errOut, code = procRun(t, env, "operator", "create", "--role", "OPERATOR", "--org", "Acme")
	require.Equal(t, 2, code, "--email is required; stderr:\n%s", errOut)

	out = procMustRun(t, env, "operator", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.True(t, strings.HasPrefix(lines[0], "ORGANISATION"), "output:\n%s", out)
	find := func(email string) []string {
		for _, l := range lines[1:] {
			if strings.Contains(l, " "+email+" ") {
				return strings.Fields(l)
			}
		}
		t.Fatalf("%s not listed:\n%s", email, out)
		return nil
	}
	require.Equal(t, []string{"Acme", "ops@acme.test", "OPERATOR", "Ops", "Person"}, find("ops@acme.test"))
	require.Equal(t, []string{"Acme", "viewer@acme.test", "VIEWER"}, find("viewer@acme.test"))

	srv := procServe(t, "serve", env)
	srv.login("viewer@acme.test", viewerPassword)
	before := srv.login("ops@acme.test", pw1)

	out = procMustRun(t, env, "operator", "set-password", "--email", "ops@acme.test", "--password", pw2)
	require.Contains(t, out, "password of ops@acme.test changed")
	srv.anonymous().do(procLoginMutation, vars{"e": "ops@acme.test", "p": pw1}).requireCode(t, "UNAUTHENTICATED")
	srv.login("ops@acme.test", pw2)
	srv.anonymous().do(`mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, vars{"r": before.RefreshToken}).
		requireCode(t, "UNAUTHENTICATED")

	_, errOut, code = procRun(t, env, "operator", "set-password", "--email", "nobody@acme.test", "--password", pw2)
	require.NotEqual(t, 0, code, "an unknown operator is an error")
	require.Contains(t, errOut, "nobody@acme.test")
}

// ---------------------------------------------------------------------------
// 7. Observability

func TestProcessObservabilityEndpoints(t *testing.T) {
	t.Parallel()
	srv := procServe(t, "serve", map[string]string{"DATABASE_URL": testdb.URL(t)})

	// Something to count.
	srv.anonymous().do(`{ __typename }`, nil).requireOK(t)

	ids := map[string]string{}
	procWaitReady(t, srv)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/graphql?query=%7B__typename%7D"} {
		resp, body := procGet(t, srv.Base+path, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		ids[path] = resp.Header.Get("X-Request-ID")
		if path == "/metrics" {
			require.Contains(t, body, "lintel_http_requests_total{")
			require.Contains(t, body, "lintel_subscribers")
		}
	}
	require.NotEmpty(t, ids["/graphql?query=%7B__typename%7D"], "GraphQL responses carry X-Request-ID")

	// A well-formed request ID from the client is kept and logged.
	resp, _ := procGet(t, srv.Base+"/graphql?query=%7B__typename%7D", http.Header{"X-Request-Id": {"proc-test-42"}})
	require.Equal(t, "proc-test-42", resp.Header.Get("X-Request-ID"))

	// stderr is JSON lines; the access log names the request IDs.
	logged := func(id string) bool {
		for _, l := range strings.Split(srv.stderr.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(l), &entry) == nil && entry["request_id"] == id {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return logged("proc-test-42") }, 3*time.Second, 20*time.Millisecond,
		"a log line carries the request ID; stderr:\n%s", srv.stderr)
	require.True(t, logged(ids["/graphql?query=%7B__typename%7D"]), "a generated request ID is logged too")
	lines := strings.Split(strings.TrimRight(srv.stderr.String(), "\n"), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &entry), "every stderr line is JSON: %q", l)
		require.Contains(t, entry, "level")
		require.Contains(t, entry, "msg")
	}

	var missing []string
	for path, id := range ids {
		if id == "" {
			missing = append(missing, path)
		}
	}
	require.Empty(t, missing, "every response carries an X-Request-ID")
}

// ---------------------------------------------------------------------------
// Scale-out: three replicas on one database.

func TestProcessThreeReplicasShareImportProgressAndRecordChanges(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testdb.URL(t)}
	reps := []*procServer{procStart(t, "replica A", env), procStart(t, "replica B", env), procStart(t, "replica C", env)}
	for _, p := range reps {
		p.waitServing()
		procWaitReady(t, p)
	}
	const pw = "process test password 3"
	procMustRun(t, env, "operator", "create", "--email", "admin@acme.test", "--role", "ADMIN", "--org", "Acme", "--password", pw)
	onA := reps[0].login("admin@acme.test", pw)
	onB := reps[1].login("admin@acme.test", pw)
	tid := onA.createTemplate(importTemplate)
	id := onA.createImport(tid, "p.csv", bigImportFile(5000, "R"), nil).requireOK(t).str("createImport.id")

	// A progress subscriber on every replica, and a record subscriber on C.
	subscribe := func(p *procServer, query string, variables map[string]any) *websocket.Conn {
		conn := procWSInit(t, p.Base, "Bearer "+onA.Token)
		ack, err := procWSRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "connection_ack", ack["type"])
		procWSSend(t, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": variables}})
		return conn
	}
	var progress []*websocket.Conn
	for _, p := range reps {
		c := subscribe(p, `subscription($id: ID!) { importProgress(id: $id) { phase outcome processed } }`, map[string]any{"id": id})
		first, err := procWSRead(t, c, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "next", first["type"], "%v", first)
		progress = append(progress, c)
	}
	onC := subscribe(reps[2], `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId } }`, map[string]any{"t": tid})
	require.Eventually(t, func() bool {
		v, ok := procMetric(t, reps[2].Base, "lintel_subscribers")
		return ok && v == 2
	}, 5*time.Second, 20*time.Millisecond, "both subscriptions registered on C")

	onA.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	for i, c := range progress {
		var phases []string
		for {
			msg, err := procWSRead(t, c, 60*time.Second)
			require.NoError(t, err, "replica %d", i)
			p := msg["payload"].(map[string]any)["data"].(map[string]any)["importProgress"].(map[string]any)
			ph, _ := p["phase"].(string)
			if len(phases) == 0 || phases[len(phases)-1] != ph {
				phases = append(phases, ph)
			}
			if ph == "DONE" {
				require.Equal(t, "SUCCEEDED", p["outcome"])
				require.Equal(t, 5000.0, p["processed"])
				break
			}
		}
		require.Equal(t, []string{"QUEUED", "PARSING", "VALIDATING", "APPLYING", "NOTIFYING", "DONE"}, phases, "replica %d", i)
	}
	// The import's commit reaches C's record subscriber as one bulk change.
	msg, err := procWSRead(t, onC, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "BULK_CHANGED", msg["payload"].(map[string]any)["data"].(map[string]any)["recordChanged"].(map[string]any)["kind"], "%v", msg)

	// A record changed through B reaches the subscriber on C.
	rid := onB.addRecord(tid, "900001", "zed@acme.test", "Zed")
	msg, err = procWSRead(t, onC, 10*time.Second)
	require.NoError(t, err)
	change := msg["payload"].(map[string]any)["data"].(map[string]any)["recordChanged"].(map[string]any)
	require.Equal(t, "CREATED", change["kind"])
	require.Equal(t, rid, change["recordId"])
}

func TestProcessSurvivesADatabaseRestart(t *testing.T) {
	t.Parallel()
	// A PostgreSQL of this test's own, on a fixed port, so it can be
	// stopped and started again under a running server. (Not t.TempDir: run
	// as root, PostgreSQL runs as another user, who must reach the
	// directory.)
	dir, err := os.MkdirTemp("", "lintel-db-restart-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	free := procFreeAddr(t)
	port, err := strconv.Atoi(free[strings.LastIndex(free, ":")+1:])
	require.NoError(t, err)
	ctx := context.Background()
	pg, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, Port: port, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop() })
	env := map[string]string{"DATABASE_URL": pg.URL("") + "&connect_timeout=2"}
	if !strings.Contains(pg.URL(""), "?") {
		env["DATABASE_URL"] = pg.URL("") + "?connect_timeout=2"
	}
	srv := procServe(t, "server", env)
	procWaitReady(t, srv)
	const pw = "process test password 4"
	procMustRun(t, env, "operator", "create", "--email", "admin@acme.test", "--role", "ADMIN", "--org", "Acme", "--password", pw)
	c := srv.login("admin@acme.test", pw)
	tid := c.createTemplate(staffTemplate)
	conn := procWSInit(t, srv.Base, "Bearer "+c.Token)
	ack, err := procWSRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "connection_ack", ack["type"])
	procWSSend(t, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId } }`, "variables": map[string]any{"t": tid}}})
	require.Eventually(t, func() bool {
		v, ok := procMetric(t, srv.Base, "lintel_subscribers")
		return ok && v == 1
	}, 5*time.Second, 20*time.Millisecond)

	// The database goes away: requests fail fast and say why.
	require.NoError(t, pg.Stop())
	start := time.Now()
	res := c.do(`{ templates { id } }`, nil)
	e := res.requireCode(t, "UNAVAILABLE")
	require.Less(t, time.Since(start), 5*time.Second, "the request hung: %s", e.Message)
	resp, _ := procGet(t, srv.Base+"/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// It comes back: the pool and the event listener recover without a
	// server restart, and the open subscription hears new changes.
	pg, err = pgembed.Start(ctx, pgembed.Options{DataDir: dir, Port: port, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop() })
	procWaitReady(t, srv)
	var rid string
	require.Eventually(t, func() bool {
		res := c.do(`mutation($t: ID!, $in: RecordInput!) { addRecord(templateId: $t, input: $in) { id } }`, vars{"t": tid, "in": vars{
			"cardId": "4242", "uniqueIdentifier": "back@acme.test", "fields": []vars{{"key": "first_name", "value": "Back"}, {"key": "last_name", "value": "Again"}}}})
		if len(res.Errors) > 0 {
			return false
		}
		rid = res.str("addRecord.id")
		return true
	}, 20*time.Second, 200*time.Millisecond, "requests work again")
	for {
		msg, err := procWSRead(t, conn, 10*time.Second)
		require.NoError(t, err, "the subscription did not resume")
		change := msg["payload"].(map[string]any)["data"].(map[string]any)["recordChanged"].(map[string]any)
		if change["recordId"] == rid {
			require.Equal(t, "CREATED", change["kind"])
			break
		}
	}
}
