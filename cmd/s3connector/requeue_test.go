package main

import (
	"strings"
	"testing"
)

// `requeue --list` shows the files of error/ with their reasons;
// `requeue KEY` moves one back to the inbox, where the next run imports
// it; a key that is not an error file is refused with exit 1.
func TestRequeueCommand(t *testing.T) {
	f := newRunFixture(t, map[string]string{"good.csv": "ok", "bad.csv": "BROKEN"})
	cfg := f.config(t, "127.0.0.1:0", `      type: exec
      command: ["sh", "-c", "data=$(cat); case \"$data\" in *BROKEN*) exit 65;; esac"]
      timeout: 30s
`)
	if out, stderr, code := runCLI(t, "run", "--config", cfg, "--once"); code != 0 {
		t.Fatalf("run --once exited %d: %s %s", code, out, stderr)
	}
	out, stderr, code := runCLI(t, "requeue", "--config", cfg, "--connection", "acme", "--list")
	if code != 0 || !strings.Contains(out, "imports/error/bad.") || !strings.Contains(out, "rejected: the import command rejected the file (exit status 65)") || !strings.Contains(out, "1 files in") {
		t.Fatalf("requeue --list exited %d:\n%s%s", code, out, stderr)
	}
	errorKey := strings.Fields(out)[0]

	out, stderr, code = runCLI(t, "requeue", "--config", cfg, "--connection", "acme", errorKey, "archive/nope.csv")
	if code != 1 || !strings.Contains(out, "requeued "+errorKey+" -> imports/bad.csv") || !strings.Contains(stderr, "not a file in error/") {
		t.Fatalf("requeue exited %d:\n%s%s", code, out, stderr)
	}
	if got := f.keys(t, "imports/bad.csv"); len(got) != 1 {
		t.Errorf("bad.csv not back in the inbox: %v", got)
	}
	if got := f.keys(t, "imports/error/bad"); len(got) != 0 {
		t.Errorf("error/ still holds %v", got)
	}
	if _, _, code := runCLI(t, "requeue", "--config", cfg, "--connection", "acme"); code != 2 {
		t.Errorf("requeue without keys or --list exited %d, want 2 (usage)", code)
	}
}
