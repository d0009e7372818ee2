package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// toxiproxy is a running toxiproxy-server (built by `make bench-tools`),
// driven through its HTTP API: proxies in front of MinIO, one with a
// latency toxic on the responses, one with a bandwidth toxic.
type toxiproxy struct {
	api  string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func startToxiproxy(ctx context.Context, dir string) (*toxiproxy, error) {
	bin, err := miniotest.Tool("toxiproxy-server")
	if err != nil {
		return nil, fmt.Errorf("%w (make bench-tools builds it)", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "toxiproxy.log"))
	if err != nil {
		return nil, err
	}
	t := &toxiproxy{api: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1), log: logf}
	t.cmd = exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start toxiproxy: %w", err)
	}
	go func() { t.done <- t.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := t.call(ctx, http.MethodGet, "/version", nil); err == nil {
			return t, nil
		}
		select {
		case err := <-t.done:
			logf.Close()
			return nil, fmt.Errorf("toxiproxy exited before it was ready: %v", err)
		case <-ctx.Done():
			t.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Close()
			return nil, fmt.Errorf("toxiproxy not ready after 20s")
		}
	}
}

// proxy makes a proxy to upstream (an http://host:port endpoint) that
// delays every response chunk by latency, and returns its endpoint.
func (t *toxiproxy) proxy(ctx context.Context, name, upstream string, latency time.Duration) (string, error) {
	return t.proxyWith(ctx, name, upstream, map[string]any{"name": "latency", "type": "latency", "stream": "downstream", "toxicity": 1.0,
		"attributes": map[string]any{"latency": latency.Milliseconds(), "jitter": 0}})
}

// bandwidthProxy makes a proxy to upstream that passes the responses of
// every connection at rate KB/s (toxiproxy's KB: 1,000 bytes): its
// bandwidth toxic runs once per connection (a link of its own), so
// the cap is per connection and n connections get n times the rate, as
// from S3. Requests (upstream) are not capped.
func (t *toxiproxy) bandwidthProxy(ctx context.Context, name, upstream string, rate int) (string, error) {
	return t.proxyWith(ctx, name, upstream, map[string]any{"name": "bandwidth", "type": "bandwidth", "stream": "downstream", "toxicity": 1.0,
		"attributes": map[string]any{"rate": rate}})
}

func (t *toxiproxy) proxyWith(ctx context.Context, name, upstream string, toxic map[string]any) (string, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	if err := t.call(ctx, http.MethodPost, "/proxies", map[string]any{"name": name, "listen": listen, "upstream": u.Host, "enabled": true}); err != nil {
		return "", err
	}
	if err := t.call(ctx, http.MethodPost, "/proxies/"+name+"/toxics", toxic); err != nil {
		return "", err
	}
	return "http://" + listen, nil
}

func (t *toxiproxy) call(ctx context.Context, method, path string, body any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (t *toxiproxy) Close() {
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
	t.log.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
