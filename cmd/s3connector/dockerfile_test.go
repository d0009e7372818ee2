package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// No Docker engine runs here, so the Dockerfile's build line is run as the
// image would run it (same command, same flags, VERSION and COMMIT build
// args substituted), and the runtime stage's contract is checked.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines.
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var build string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			build = strings.TrimPrefix(line, "RUN ")
		}
	}
	if build == "" {
		t.Fatal("Dockerfile has no RUN ... go build line")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/s3connector"} {
		if !strings.Contains(build, want) {
			t.Errorf("build line lacks %q: %s", want, build)
		}
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot:nonroot",
		"EXPOSE 9464",
		`ENTRYPOINT ["s3connector"]`,
		`CMD ["run", "--config", "/etc/s3connector/config.yaml"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}

	out := filepath.Join(t.TempDir(), "out")
	build = strings.ReplaceAll(build, "/out/", out+"/")
	build = strings.ReplaceAll(build, "${VERSION}", "v9.9.9-test")
	build = strings.ReplaceAll(build, "${COMMIT}", "abc1234")
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = "../.." // the image's WORKDIR holds the repository
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Dockerfile build line failed: %v\n%s\n%s", err, build, b)
	}
	bin := filepath.Join(out, "s3connector")
	v, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, v)
	}
	if want := regexp.MustCompile(`^s3connector v9\.9\.9-test \(commit abc1234, ` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`); !want.Match(v) {
		t.Errorf("version printed %q", v)
	}
	// Static: distroless/static has no dynamic loader.
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked (has an ELF interpreter)")
		}
	}
}
