//go:build torture

package torture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// Toxiproxy is a toxiproxy-server (v2.5.0, built into .cache/bin by make)
// driven through its HTTP API, stopped when the test ends.
type Toxiproxy struct {
	t   *testing.T
	api string
}

// StartToxiproxy starts a toxiproxy-server on a free loopback port.
func StartToxiproxy(t *testing.T) *Toxiproxy {
	t.Helper()
	bin, err := miniotest.Tool("toxiproxy-server")
	if err != nil {
		t.Fatalf("%v (make torture builds it)", err)
	}
	addr := FreeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	logf, err := os.Create(filepath.Join(t.TempDir(), "toxiproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-host", host, "-port", port)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		logf.Close()
	})
	tp := &Toxiproxy{t: t, api: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := tp.call(http.MethodGet, "/version", nil); err == nil {
			return tp
		}
		if time.Now().After(deadline) {
			t.Fatal("toxiproxy not ready after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ToxicProxy is one proxy of a Toxiproxy.
type ToxicProxy struct {
	tp   *Toxiproxy
	Name string
	// URL is the proxy's endpoint, http://127.0.0.1:PORT.
	URL string
}

// Proxy makes a proxy to upstream (an http://host:port endpoint).
func (tp *Toxiproxy) Proxy(name, upstream string) *ToxicProxy {
	tp.t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tp.t.Fatal(err)
	}
	listen := FreeAddr(tp.t)
	if _, err := tp.call(http.MethodPost, "/proxies", map[string]any{"name": name, "listen": listen, "upstream": u.Host, "enabled": true}); err != nil {
		tp.t.Fatal(err)
	}
	return &ToxicProxy{tp: tp, Name: name, URL: "http://" + listen}
}

// Toxic is a toxic to add: Type is latency, bandwidth, slow_close,
// timeout, reset_peer, slicer or limit_data; Stream is "downstream"
// (answers, the default) or "upstream" (requests); Toxicity the share of
// connections it applies to (default 1).
type Toxic struct {
	Name, Type, Stream string
	Toxicity           float64
	Attributes         map[string]any
}

// Add adds a toxic.
func (p *ToxicProxy) Add(x Toxic) error {
	if x.Stream == "" {
		x.Stream = "downstream"
	}
	if x.Toxicity == 0 {
		x.Toxicity = 1
	}
	if x.Name == "" {
		x.Name = x.Type
	}
	_, err := p.tp.call(http.MethodPost, "/proxies/"+p.Name+"/toxics", map[string]any{
		"name": x.Name, "type": x.Type, "stream": x.Stream, "toxicity": x.Toxicity, "attributes": x.Attributes})
	return err
}

// Remove removes the toxic named name.
func (p *ToxicProxy) Remove(name string) error {
	_, err := p.tp.call(http.MethodDelete, "/proxies/"+p.Name+"/toxics/"+name, nil)
	return err
}

// Clear removes every toxic of the proxy.
func (p *ToxicProxy) Clear() error {
	b, err := p.tp.call(http.MethodGet, "/proxies/"+p.Name+"/toxics", nil)
	if err != nil {
		return err
	}
	var toxics []struct{ Name string }
	if err := json.Unmarshal(b, &toxics); err != nil {
		return err
	}
	for _, x := range toxics {
		if err := p.Remove(x.Name); err != nil {
			return err
		}
	}
	return nil
}

// SetEnabled enables or disables the proxy: disabled, it closes every
// connection and refuses new ones (the endpoint cut off).
func (p *ToxicProxy) SetEnabled(on bool) error {
	_, err := p.tp.call(http.MethodPost, "/proxies/"+p.Name, map[string]any{"enabled": on})
	return err
}

func (tp *Toxiproxy) call(method, path string, body any) ([]byte, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tp.api+path, rd)
	if err != nil {
		return nil, err
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("toxiproxy %s %s: %s %s", method, path, resp.Status, b)
	}
	return b, nil
}
