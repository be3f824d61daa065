// Package kwtest starts a real kraftwerk process for a test: free loopback ports, a temp dir,
// server.properties, `kraftwerk format`, then `kraftwerk --config`. The franz-go tests talk to it
// only over the Kafka protocol.
package kwtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds spawn-to-listening; a debug build on a busy 2-core machine is slow.
const readyTimeout = 60 * time.Second

// stopTimeout is how long SIGTERM may take before SIGKILL.
const stopTimeout = 20 * time.Second

// ansiEscape matches terminal colour codes, in case the broker colours its log anyway.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Broker is one running single-node kraftwerk (broker and controller roles).
type Broker struct {
	Addr    string // Addr is host:port of the PLAINTEXT listener, for kgo.SeedBrokers.
	LogPath string // LogPath is the broker's combined stdout/stderr.
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Binary returns $KRAFTWERK_BIN, else target/debug/kraftwerk of the enclosing cargo workspace
// (found by walking up from the working directory, which is tests/go under `go test`).
func Binary() (string, error) {
	if env := os.Getenv("KRAFTWERK_BIN"); env != "" {
		abs, err := filepath.Abs(env)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("KRAFTWERK_BIN=%s: %w", env, err)
		}
		return abs, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "target", "debug", "kraftwerk")
		if st, err := os.Stat(candidate); err == nil && !st.IsDir() {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no kraftwerk binary: build it (cargo build -p kraftwerk-broker) or set KRAFTWERK_BIN")
		}
		dir = parent
	}
}

// Start formats a fresh log dir, starts kraftwerk and waits until its client port accepts
// connections. The broker is stopped when the test ends; if the test failed, the broker's
// warnings and the tail of its log are written to the test log first, because the broker log
// names the request it refused while the client often only reports a timeout.
func Start(t testing.TB) *Broker {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	port, cport := ports[0], ports[1]
	props := filepath.Join(dir, "server.properties")
	content := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport),
		"controller.listener.names=CONTROLLER",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + filepath.Join(dir, "data"),
		"offsets.topic.replication.factor=1",
		"group.initial.rebalance.delay.ms=0",
		"",
	}, "\n")
	if err := os.WriteFile(props, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	uuid, err := run(bin, "random-uuid")
	if err != nil {
		t.Fatal(err)
	}
	clusterID := strings.TrimSpace(uuid)
	if clusterID == "" {
		t.Fatalf("%s random-uuid printed nothing", bin)
	}
	// "--cluster-id=<id>": a base64 id may start with '-', which a separate argument would turn
	// into an unknown flag.
	if _, err := run(bin, "format", "--config", props, "--cluster-id="+clusterID); err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", props)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = os.Environ()
	if os.Getenv("RUST_LOG") == "" {
		cmd.Env = append(cmd.Env, "RUST_LOG=info")
	}
	// Plain text: the log is read by people and grepped by Report.
	cmd.Env = append(cmd.Env, "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	b := &Broker{
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		LogPath: logPath,
		cmd:     cmd,
		exited:  make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(b.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kraftwerk log (%s):\n%s", b.state(), b.Report(40, 30))
		}
		b.stop()
	})
	if err := b.awaitListening(); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Broker) state() string {
	select {
	case <-b.exited:
		return "broker DEAD"
	default:
		return "broker alive"
	}
}

func (b *Broker) awaitListening() error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-b.exited:
			return fmt.Errorf("kraftwerk exited before listening; log:\n%s", b.Report(0, 60))
		default:
		}
		conn, err := net.DialTimeout("tcp", b.Addr, 500*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kraftwerk did not listen on %s within %s; log:\n%s", b.Addr, readyTimeout, b.Report(0, 60))
}

// Report returns up to maxProblems warning/error lines of the broker log, then its last tail lines.
func (b *Broker) Report(maxProblems, tail int) string {
	data, err := os.ReadFile(b.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", b.LogPath, err)
	}
	lines := strings.Split(strings.TrimRight(ansiEscape.ReplaceAllString(string(data), ""), "\n"), "\n")
	var out bytes.Buffer
	if maxProblems > 0 {
		out.WriteString("-- warnings/errors:\n")
		n := 0
		for _, l := range lines {
			s := strings.ToLower(l)
			if strings.Contains(s, "error") || strings.Contains(s, "warn") || strings.Contains(s, "unsupported") ||
				strings.Contains(s, "refus") || strings.Contains(s, "panic") {
				out.WriteString(l + "\n")
				n++
				if n >= maxProblems {
					break
				}
			}
		}
		out.WriteString("-- last lines:\n")
	}
	from := len(lines) - tail
	if from < 0 {
		from = 0
	}
	out.WriteString(strings.Join(lines[from:], "\n"))
	return out.String()
}

func (b *Broker) stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(stopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

func run(bin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s %v: %w", bin, args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("%s %v: %w\n%s%s", bin, args, err, stdout.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("%s %v did not finish within 60s", bin, args)
	}
	return stdout.String(), nil
}

func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addr, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("unexpected listener address %v", l.Addr())
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
