package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// client calls the admin API with the bearer token, printing each request
// and answer as a curl user would see them.
type client struct {
	out   io.Writer
	base  string
	token string
}

// call sends one request and decodes the answer's data into v (when not
// nil); it returns the status code.
func (c *client) call(ctx context.Context, method, path, body string, v any) (int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	curl := fmt.Sprintf("curl -X %s -H 'Authorization: Bearer $TOKEN'", method)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		curl += fmt.Sprintf(" -H 'Content-Type: application/json' -d '%s'", body)
	}
	fmt.Fprintf(c.out, "$ %s %s%s\n", curl, c.base, path)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: answer %d is not JSON: %s", method, path, resp.StatusCode, raw)
	}
	fmt.Fprintf(c.out, "%s\n", resp.Status)
	if env.Error != nil {
		fmt.Fprintf(c.out, "  error %s: %s\n", env.Error.Code, env.Error.Message)
	} else {
		fmt.Fprintln(c.out, summarise(env.Data))
	}
	if v != nil && env.Data != nil {
		if err := json.Unmarshal(env.Data, v); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// do is call requiring the status code want.
func (c *client) do(ctx context.Context, method, path, body string, want int, v any) error {
	code, err := c.call(ctx, method, path, body, v)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, path, code, want)
	}
	return nil
}

// summarise shortens an answer for the screen: long policy documents are
// printed by the step itself.
func summarise(data json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "  ", "  "); err != nil {
		return string(data)
	}
	s := "  " + b.String()
	if lines := strings.Split(s, "\n"); len(lines) > 40 {
		s = strings.Join(lines[:40], "\n") + fmt.Sprintf("\n  ... (%d more lines)", len(lines)-40)
	}
	return s
}

// waitReady waits for the admin listener to answer.
func (c *client) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/regions", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the daemon's admin API did not answer")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// daemonProc is the running `s3connector run`.
type daemonProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

func startDaemon(binary, configFile, logPath string, env []string) (*daemonProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "run", "--config", configFile)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	d := &daemonProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		cmd.Wait() //nolint:errcheck // the log says why
		logf.Close()
		close(d.exited)
	}()
	return d, nil
}

// stop ends the daemon gracefully (SIGTERM), or kills it after 40 s.
func (d *daemonProc) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-d.exited:
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill() //nolint:errcheck
		<-d.exited
	}
}

func (d *daemonProc) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
