package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

var update = flag.Bool("update", false, "rewrite prometheusrule.yaml from metrics/alerts/s3connector.rules.yml")

const (
	rulesFile          = "../metrics/alerts/s3connector.rules.yml"
	prometheusRuleFile = "prometheusrule.yaml"
	// The Dockerfile's CMD reads the configuration from here.
	configPath = "/etc/s3connector/config.yaml"
	// The distroless "nonroot" user of the Dockerfile's runtime image.
	nonRootUID = 65532
)

// kustomization is the part of kustomization.yaml the tests read.
type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// manifestFiles are the files kustomization.yaml lists, in its order.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var k kustomization
	decodeFile(t, "kustomization.yaml", &k)
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml: no resources")
	}
	return k.Resources
}

func decodeFile(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(false)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// kubeconformResult is kubeconform's -output json.
type kubeconformResult struct {
	Resources []struct {
		Filename string `json:"filename"`
		Kind     string `json:"kind"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Status   string `json:"status"`
		Msg      string `json:"msg"`
	} `json:"resources"`
	Summary struct {
		Valid   int `json:"valid"`
		Invalid int `json:"invalid"`
		Errors  int `json:"errors"`
		Skipped int `json:"skipped"`
	} `json:"summary"`
}

// kubeconformEnv converts the schemas once per test binary.
type kubeconformEnv struct {
	bin       string
	version   string
	schemaDir string
}

var kcEnv *kubeconformEnv

func setupKubeconform(t *testing.T) *kubeconformEnv {
	t.Helper()
	if kcEnv != nil {
		return kcEnv
	}
	bin, err := miniotest.Tool("kubeconform")
	if err != nil {
		t.Fatal(err)
	}
	src := findSchemaSource(t)
	dir, err := os.MkdirTemp("", "s3connector-k8s-schemas-")
	if err != nil {
		t.Fatal(err)
	}
	names, err := writeSchemas(src, dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("convert schemas: %v", err)
	}
	t.Logf("kubeconform schemas for Kubernetes %s: %d kinds from %s", src.kubernetesVersion, len(names), src.dir)
	kcEnv = &kubeconformEnv{bin: bin, version: src.kubernetesVersion, schemaDir: dir}
	return kcEnv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kcEnv != nil {
		os.RemoveAll(kcEnv.schemaDir)
	}
	os.Exit(code)
}

// run validates files and returns kubeconform's report and exit error.
func (e *kubeconformEnv) run(t *testing.T, files ...string) (kubeconformResult, error) {
	t.Helper()
	args := append([]string{
		"-strict", "-summary", "-verbose", "-output", "json",
		"-kubernetes-version", e.version,
		"-schema-location", e.schemaDir,
	}, files...)
	cmd := exec.Command(e.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res kubeconformResult
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		t.Fatalf("kubeconform %s: %v (exit: %v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), jerr, err, stdout.String(), stderr.String())
	}
	return res, err
}

// TestKubeconform validates every manifest strictly: each resource must
// find its schema (a missing one is an error, not a skip) and pass it.
func TestKubeconform(t *testing.T) {
	e := setupKubeconform(t)
	files := manifestFiles(t)
	res, err := e.run(t, files...)
	for _, r := range res.Resources {
		t.Logf("%s: %s %s/%s: %s %s", r.Filename, r.Status, r.Kind, r.Name, r.Version, r.Msg)
		if r.Status != "statusValid" {
			t.Errorf("%s: %s %s: %s %s", r.Filename, r.Kind, r.Name, r.Status, r.Msg)
		}
	}
	if err != nil {
		t.Errorf("kubeconform: %v", err)
	}
	// One resource per file; every kind validated.
	if res.Summary.Valid != len(files) {
		t.Errorf("kubeconform found %d valid resources, want %d (one per file in kustomization.yaml): %+v", res.Summary.Valid, len(files), res.Summary)
	}
	var kinds []string
	for _, r := range res.Resources {
		kinds = append(kinds, r.Kind)
	}
	slices.Sort(kinds)
	want := []string{"ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor"}
	if !slices.Equal(kinds, want) {
		t.Errorf("validated kinds %v, want %v", kinds, want)
	}
}

// TestKubeconformRejects shows the schemas bite: each mistake, made in a copy
// of a manifest, must fail validation with a message naming it.
func TestKubeconformRejects(t *testing.T) {
	e := setupKubeconform(t)
	for _, tc := range []struct {
		file, old, new string
		msg            string // in kubeconform's message
	}{
		{"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "'readOnlyRootFileSystem' not allowed"},
		{"deployment.yaml", "replicas: 1", "replicas: one", "at '/spec/replicas': got string, want integer"},
		{"deployment.yaml", "          ports:\n            - name: metrics\n", "          ports:\n            - nam: metrics\n", "'nam' not allowed"},
		{"deployment.yaml", "      serviceAccountName:", "      serviceAccount_Name:", "'serviceAccount_Name' not allowed"},
		{"deployment.yaml", "cpu: 100m", "cpu: [100m]", "at '/spec/template/spec/containers/0/resources/requests/cpu'"},
		{"service.yaml", "port: 9464", "port: \"9464\"", "at '/spec/ports/0/port': got string, want integer"},
		{"service.yaml", "  labels:\n", "  lables:\n", "'lables' not allowed"},
		{"servicemonitor.yaml", "interval: 30s", "intervall: 30s", "'intervall' not allowed"},
		{"servicemonitor.yaml", "  labels:\n", "  lables:\n", "'lables' not allowed"},
		{"prometheusrule.yaml", "for: 5m", "fore: 5m", "'fore' not allowed"},
		{"configmap.yaml", "\ndata:", "\ndat:", "'dat' not allowed"},
		{"serviceaccount.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: 0", "at '/automountServiceAccountToken': got number, want boolean"},
		{"networkpolicy.yaml", "  policyTypes:", "  policyType:", "'policyType' not allowed"},
		{"networkpolicy.yaml", "          podSelector:", "          podSelectr:", "'podSelectr' not allowed"},
		// Not a Kubernetes resource: a missing schema is an error, not a skip.
		{"kustomization.yaml", "", "", "could not find schema for Kustomization"},
	} {
		t.Run(tc.file+"/"+tc.new, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q: update this test", tc.file, tc.old)
			}
			bad := bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1)
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := e.run(t, path)
			if err == nil {
				t.Fatalf("kubeconform accepted %s with %q replaced by %q", tc.file, tc.old, tc.new)
			}
			var msgs []string
			for _, r := range res.Resources {
				msgs = append(msgs, r.Status+": "+r.Msg)
			}
			all := strings.Join(msgs, "\n")
			if !strings.Contains(all, tc.msg) {
				t.Errorf("kubeconform's message does not name %q:\n%s", tc.msg, all)
			}
			t.Logf("rejected: %s", all)
		})
	}
}

// TestKustomization: kustomization.yaml lists every manifest in this folder,
// and its image entry names the container image.
func TestKustomization(t *testing.T) {
	listed := manifestFiles(t)
	onDisk, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	onDisk = slices.DeleteFunc(onDisk, func(s string) bool { return s == "kustomization.yaml" })
	slices.Sort(onDisk)
	sorted := slices.Sorted(slices.Values(listed))
	if !slices.Equal(sorted, onDisk) {
		t.Errorf("kustomization.yaml resources %v, want the manifests in deploy/: %v", sorted, onDisk)
	}
	var k kustomization
	decodeFile(t, "kustomization.yaml", &k)
	if k.Namespace == "" {
		t.Error("kustomization.yaml: no namespace: one namespace per tenant")
	}
	d := loadDeployment(t)
	if len(k.Images) != 1 || k.Images[0].Name != d.container(t).Image {
		t.Fatalf("kustomization.yaml images %+v: want one entry for the container image %q", k.Images, d.container(t).Image)
	}
	if tag := k.Images[0].NewTag; tag == "" || tag == "latest" {
		t.Errorf("kustomization.yaml: image tag %q: pin a release, never latest", tag)
	}
}

// The parts of the manifests the contract tests read.
type (
	objectMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []envVar `yaml:"env"`
		EnvFrom []any    `yaml:"envFrom"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Privileged               *bool `yaml:"privileged"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	deployment struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     struct {
					ServiceAccountName            string `yaml:"serviceAccountName"`
					AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
					TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
					HostNetwork                   bool   `yaml:"hostNetwork"`
					HostPID                       bool   `yaml:"hostPID"`
					SecurityContext               struct {
						RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
						RunAsUser      *int  `yaml:"runAsUser"`
						SeccompProfile struct {
							Type string `yaml:"type"`
						} `yaml:"seccompProfile"`
					} `yaml:"securityContext"`
					Containers []container `yaml:"containers"`
					Volumes    []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
						EmptyDir              *struct{} `yaml:"emptyDir"`
						PersistentVolumeClaim *struct {
							ClaimName string `yaml:"claimName"`
						} `yaml:"persistentVolumeClaim"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
							Items      []struct {
								Key  string `yaml:"key"`
								Path string `yaml:"path"`
							} `yaml:"items"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
)

func loadDeployment(t *testing.T) deployment {
	t.Helper()
	var d deployment
	decodeFile(t, "deployment.yaml", &d)
	return d
}

func (d deployment) container(t *testing.T) container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("deployment.yaml: %d containers, want 1", len(cs))
	}
	return cs[0]
}

// loadConfig loads the ConfigMap's config.yaml with the daemon's own loader,
// its ${VAR}s taken from the Deployment's environment (a Secret's value
// replaced by a valid External ID) and its status_token_file, which must be
// a key of a Secret mounted in the container, replaced by a test file.
func loadConfig(t *testing.T, d deployment) *config.Config {
	t.Helper()
	var cm struct {
		Metadata objectMeta        `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	decodeFile(t, "configmap.yaml", &cm)
	text, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("configmap.yaml: no config.yaml key (data has %v)", slices.Sorted(maps.Keys(cm.Data)))
	}
	env := map[string]string{}
	for _, v := range d.container(t).Env {
		switch {
		case v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil:
			env[v.Name] = "platform-test-external-id-0123456789"
		case v.ValueFrom == nil:
			env[v.Name] = v.Value
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(text, -1) {
		value, ok := env[m[1]]
		if !ok {
			t.Errorf("configmap.yaml uses ${%s}, which deployment.yaml does not set", m[1])
			continue
		}
		t.Setenv(m[1], value)
	}
	text = replaceStatusTokenFile(t, d, text)
	text = replaceAdminTokenFiles(t, d, text)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("configmap.yaml config.yaml: the daemon refuses it: %v", err)
	}
	return cfg
}

// replaceStatusTokenFile checks that the configuration's status_token_file
// is a file of a Secret volume mounted read-only in the container, and
// points it at a test token file instead.
func replaceStatusTokenFile(t *testing.T, d deployment, text string) string {
	t.Helper()
	var top struct {
		StatusTokenFile string `yaml:"status_token_file"`
	}
	if err := yaml.Unmarshal([]byte(text), &top); err != nil {
		t.Fatalf("configmap.yaml config.yaml: %v", err)
	}
	file := top.StatusTokenFile
	if file == "" {
		return text
	}
	var fromSecret bool
	for _, m := range d.container(t).VolumeMounts {
		if m.MountPath != filepath.Dir(file) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil || !m.ReadOnly {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == filepath.Base(file) {
					fromSecret = true
					t.Logf("status_token_file %s: key %s of the Secret %s", file, it.Key, v.Secret.SecretName)
				}
			}
		}
	}
	if !fromSecret {
		t.Errorf("configmap.yaml: status_token_file %s is not a key of a Secret mounted read-only in deployment.yaml", file)
	}
	token := filepath.Join(t.TempDir(), "status-token")
	if err := os.WriteFile(token, []byte("platform-test-status-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(text, "status_token_file: "+file, "status_token_file: "+token, 1)
}

// secretFile reports whether file is a key of a Secret volume mounted
// read-only in the container.
func secretFile(t *testing.T, d deployment, file string) bool {
	t.Helper()
	for _, m := range d.container(t).VolumeMounts {
		if m.MountPath != filepath.Dir(file) || !m.ReadOnly {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == filepath.Base(file) {
					return true
				}
			}
		}
	}
	return false
}

// replaceAdminTokenFiles checks that every admin.token_files entry is a
// key of a Secret mounted read-only, and points each at a test token file
// of the same base name (the token's id).
func replaceAdminTokenFiles(t *testing.T, d deployment, text string) string {
	t.Helper()
	var top struct {
		Admin struct {
			TokenFiles []string `yaml:"token_files"`
		} `yaml:"admin"`
	}
	if err := yaml.Unmarshal([]byte(text), &top); err != nil {
		t.Fatalf("configmap.yaml config.yaml: %v", err)
	}
	dir := t.TempDir()
	for _, file := range top.Admin.TokenFiles {
		if !secretFile(t, d, file) {
			t.Errorf("configmap.yaml: admin token file %s is not a key of a Secret mounted read-only in deployment.yaml", file)
		}
		token := filepath.Join(dir, filepath.Base(file))
		if err := os.WriteFile(token, []byte("platform-test-admin-token-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.Replace(text, file, token, 1)
	}
	return text
}

// TestDataVolume: data_dir is a writable PersistentVolumeClaim mount (the
// store survives the pod), ReadWriteOnce for the store's single writer;
// the admin API is on, on loopback, so neither the container ports nor the
// Service publish it.
func TestDataVolume(t *testing.T) {
	d := loadDeployment(t)
	c := d.container(t)
	cfg := loadConfig(t, d)
	if cfg.DataDir == "" {
		t.Fatal("configmap.yaml: no data_dir: connections created through the admin API would not be stored")
	}
	var claim string
	for _, m := range c.VolumeMounts {
		if m.MountPath != cfg.DataDir {
			continue
		}
		if m.ReadOnly {
			t.Errorf("data volume %s is mounted read-only", m.Name)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	if claim == "" {
		t.Fatalf("no PersistentVolumeClaim mounted at data_dir %s: the store would be lost with the pod", cfg.DataDir)
	}
	var pvc struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			AccessModes []string `yaml:"accessModes"`
		} `yaml:"spec"`
	}
	decodeFile(t, "persistentvolumeclaim.yaml", &pvc)
	if pvc.Metadata.Name != claim {
		t.Errorf("persistentvolumeclaim.yaml is %q, the Deployment mounts %q", pvc.Metadata.Name, claim)
	}
	if !slices.Equal(pvc.Spec.AccessModes, []string{"ReadWriteOnce"}) {
		t.Errorf("access modes %v, want [ReadWriteOnce]: the store has one writer", pvc.Spec.AccessModes)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
		t.Error("the store needs one replica, replaced with Recreate")
	}

	if !cfg.Admin.Enabled() {
		t.Fatal("configmap.yaml: no admin.token_files: the admin API and page are off")
	}
	host, port, _ := strings.Cut(cfg.Admin.Listen, ":")
	if host != "127.0.0.1" && cfg.Admin.TLSCertFile == "" {
		t.Errorf("admin.listen %q off loopback without TLS", cfg.Admin.Listen)
	}
	for _, p := range c.Ports {
		if strconv.Itoa(p.ContainerPort) == port {
			t.Errorf("container port %s publishes the loopback admin listener", port)
		}
	}
	var svc struct {
		Spec struct {
			Ports []struct {
				Port       int `yaml:"port"`
				TargetPort any `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	decodeFile(t, "service.yaml", &svc)
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(p.Port) == port || fmt.Sprint(p.TargetPort) == port {
			t.Errorf("service.yaml publishes the admin port %s: it is reached with kubectl port-forward", port)
		}
	}
}

// TestDeployment checks what a schema cannot: one replica replaced with
// Recreate, the probes on the daemon's endpoints and port, a hardened pod,
// the configuration where the image's CMD reads it and a grace period above
// shutdown_grace.
func TestDeployment(t *testing.T) {
	d := loadDeployment(t)
	spec := d.Spec.Template.Spec
	c := d.container(t)
	cfg := loadConfig(t, d)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %s, want 1: one daemon per tenant", show(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("strategy %q, want Recreate: never two daemons of one tenant during a rollout", d.Spec.Strategy.Type)
	}
	if !labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}

	// The port the daemon listens on, from the configuration.
	_, port, _ := strings.Cut(cfg.Listen, ":")
	if host, _, _ := strings.Cut(cfg.Listen, ":"); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("config listen %q: the kubelet and Prometheus cannot reach a loopback address; use 0.0.0.0", cfg.Listen)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || strconv.Itoa(c.Ports[0].ContainerPort) != port {
		t.Errorf("container ports %+v, want one named metrics on the config's listen port %s", c.Ports, port)
	}
	for name, p := range map[string]*probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no httpGet probe on %s", name)
			continue
		}
		if p.HTTPGet.Path != name || (p.HTTPGet.Port != "metrics" && p.HTTPGet.Port != c.Ports[0].ContainerPort) {
			t.Errorf("probe %+v, want %s on the metrics port", *p.HTTPGet, name)
		}
	}

	// The configuration: mounted where the image's CMD reads it.
	if len(c.Command) != 0 {
		t.Errorf("command %v overrides the image's ENTRYPOINT", c.Command)
	}
	if want := []string{"run", "--config", configPath}; !slices.Equal(c.Args, want) {
		t.Errorf("args %v, want %v", c.Args, want)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
		if m.MountPath == filepath.Dir(configPath) && !m.ReadOnly {
			t.Errorf("volume %s at %s is writable", m.Name, m.MountPath)
		}
	}
	var configVolume, tmpVolume bool
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "s3connector-acme" && mounts[v.Name] == filepath.Dir(configPath) {
			configVolume = true
		}
		if v.EmptyDir != nil && mounts[v.Name] == "/tmp" {
			tmpVolume = true
		}
	}
	if !configVolume {
		t.Errorf("the ConfigMap s3connector-acme is not mounted at %s", filepath.Dir(configPath))
	}
	if !tmpVolume {
		t.Error("no emptyDir at /tmp: the root filesystem is read-only")
	}

	// Graceful shutdown fits in the grace period, with a margin for the
	// moves already started (README, "Signals").
	grace := spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < cfg.ShutdownGrace+15*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s, want at least shutdown_grace (%s) + 15s", show(grace), cfg.ShutdownGrace)
	}

	// Hardening.
	sc := spec.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != nonRootUID {
		t.Errorf("pod securityContext: want runAsNonRoot true and runAsUser %d (the image's user)", nonRootUID)
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile %q, want RuntimeDefault", sc.SeccompProfile.Type)
	}
	if spec.HostNetwork || spec.HostPID {
		t.Error("hostNetwork/hostPID set")
	}
	csc := c.SecurityContext
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Error("container: allowPrivilegeEscalation must be false")
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Error("container: readOnlyRootFilesystem must be true")
	}
	if csc.Privileged != nil && *csc.Privileged {
		t.Error("container: privileged")
	}
	if !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) || len(csc.Capabilities.Add) != 0 {
		t.Errorf("capabilities drop %v add %v, want drop [ALL] and nothing added", csc.Capabilities.Drop, csc.Capabilities.Add)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	// The platform identity comes from the ServiceAccount (IRSA), never
	// from keys.
	if spec.ServiceAccountName != "s3connector-acme" {
		t.Errorf("serviceAccountName %q, want s3connector-acme", spec.ServiceAccountName)
	}
	var sa struct {
		Metadata                     objectMeta `yaml:"metadata"`
		AutomountServiceAccountToken *bool      `yaml:"automountServiceAccountToken"`
	}
	decodeFile(t, "serviceaccount.yaml", &sa)
	if sa.Metadata.Name != spec.ServiceAccountName {
		t.Errorf("serviceaccount.yaml name %q, want %q", sa.Metadata.Name, spec.ServiceAccountName)
	}
	role := sa.Metadata.Annotations["eks.amazonaws.com/role-arn"]
	if role == "" {
		t.Error("serviceaccount.yaml: no eks.amazonaws.com/role-arn annotation (IRSA)")
	}
	if role != cfg.PrincipalARN {
		t.Errorf("IRSA role %q differs from principal_arn %q: customers' trust policies name principal_arn, so the pod must run as it", role, cfg.PrincipalARN)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("serviceaccount.yaml: automountServiceAccountToken should be false (the daemon never calls the Kubernetes API)")
	}
}

// TestNoStaticCredentials: no manifest carries AWS keys, nor sets the
// variables that would make the SDK use them.
func TestNoStaticCredentials(t *testing.T) {
	keyID := regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`)
	for _, f := range manifestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "aws_secret_access_key"} {
			if bytes.Contains(data, []byte(bad)) {
				t.Errorf("%s mentions %s: the platform identity comes from IRSA", f, bad)
			}
		}
		if m := keyID.Find(data); m != nil {
			t.Errorf("%s holds what looks like an access key id %q", f, m)
		}
	}
	d := loadDeployment(t)
	for _, v := range d.container(t).Env {
		if v.ValueFrom == nil && strings.Contains(strings.ToUpper(v.Name), "EXTERNAL_ID") {
			t.Errorf("env %s is set inline; take it from the Secret", v.Name)
		}
	}
}

// TestServiceAndMonitor: the Service selects the pod and exposes the metrics
// port; the ServiceMonitor selects the Service and scrapes that port.
func TestServiceAndMonitor(t *testing.T) {
	d := loadDeployment(t)
	c := d.container(t)
	var svc struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Selector                 map[string]string `yaml:"selector"`
			PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
			Ports                    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	decodeFile(t, "service.yaml", &svc)
	if len(svc.Spec.Selector) == 0 || !labelsMatch(svc.Spec.Selector, d.Spec.Template.Metadata.Labels) {
		t.Errorf("service selector %v does not select the pod labels %v", svc.Spec.Selector, d.Spec.Template.Metadata.Labels)
	}
	if !svc.Spec.PublishNotReadyAddresses {
		t.Error("service: publishNotReadyAddresses should be true, so metrics are scraped while /readyz reports a failing connection")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" ||
		(svc.Spec.Ports[0].TargetPort != "metrics" && svc.Spec.Ports[0].TargetPort != c.Ports[0].ContainerPort) {
		t.Fatalf("service ports %+v, want one named metrics targeting the container's metrics port", svc.Spec.Ports)
	}

	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	decodeFile(t, "servicemonitor.yaml", &sm)
	if len(sm.Spec.Selector.MatchLabels) == 0 || !labelsMatch(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("servicemonitor selector %v does not select the service labels %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("servicemonitor endpoints %+v, want /metrics on port %q", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
}

// TestNetworkPolicy: the policy selects the Deployment's pods and admits,
// on the metrics port only, one peer that is Prometheus's pods in
// Prometheus's namespace (both selectors in one peer: two peers would admit
// every pod of that namespace, or any namespace's Prometheus); it restricts
// ingress only, so the daemon still reaches STS, S3 and its sink.
func TestNetworkPolicy(t *testing.T) {
	d := loadDeployment(t)
	c := d.container(t)
	type selector struct {
		MatchLabels      map[string]string `yaml:"matchLabels"`
		MatchExpressions []any             `yaml:"matchExpressions"`
	}
	var np struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			PodSelector selector `yaml:"podSelector"`
			PolicyTypes []string `yaml:"policyTypes"`
			Ingress     []struct {
				From []struct {
					NamespaceSelector *selector `yaml:"namespaceSelector"`
					PodSelector       *selector `yaml:"podSelector"`
					IPBlock           any       `yaml:"ipBlock"`
				} `yaml:"from"`
				Ports []struct {
					Port     any    `yaml:"port"`
					Protocol string `yaml:"protocol"`
					EndPort  *int   `yaml:"endPort"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
			Egress []any `yaml:"egress"`
		} `yaml:"spec"`
	}
	decodeFile(t, "networkpolicy.yaml", &np)
	if !labelsMatch(np.Spec.PodSelector.MatchLabels, d.Spec.Template.Metadata.Labels) || len(np.Spec.PodSelector.MatchExpressions) != 0 {
		t.Errorf("podSelector %+v does not select the Deployment's pods %v", np.Spec.PodSelector, d.Spec.Template.Metadata.Labels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []string{"Ingress"}) || np.Spec.Egress != nil {
		t.Errorf("policyTypes %v, egress %v: want Ingress only (egress goes to STS, S3 and the sink)", np.Spec.PolicyTypes, np.Spec.Egress)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("%d ingress rules, want 1 (Prometheus to the metrics port)", len(np.Spec.Ingress))
	}
	rule := np.Spec.Ingress[0]
	if len(rule.Ports) != 1 || (rule.Ports[0].Port != "metrics" && rule.Ports[0].Port != c.Ports[0].ContainerPort) ||
		rule.Ports[0].Protocol != "TCP" || rule.Ports[0].EndPort != nil {
		t.Errorf("ingress ports %+v, want the container's metrics port (%d) over TCP only", rule.Ports, c.Ports[0].ContainerPort)
	}
	if len(rule.From) != 1 {
		t.Fatalf("ingress from %d peers, want 1: Prometheus's pods in its namespace", len(rule.From))
	}
	peer := rule.From[0]
	switch {
	case peer.IPBlock != nil:
		t.Error("ingress peer is an ipBlock; want Prometheus's pods")
	case peer.NamespaceSelector == nil || peer.PodSelector == nil:
		t.Errorf("ingress peer %+v: want namespaceSelector and podSelector in one peer", peer)
	default:
		if got := peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; got != "monitoring" || len(peer.NamespaceSelector.MatchLabels) != 1 {
			t.Errorf("namespaceSelector %v, want kubernetes.io/metadata.name: monitoring", peer.NamespaceSelector.MatchLabels)
		}
		if got := peer.PodSelector.MatchLabels["app.kubernetes.io/name"]; got != "prometheus" {
			t.Errorf("podSelector %v, want the Prometheus Operator's app.kubernetes.io/name: prometheus", peer.PodSelector.MatchLabels)
		}
	}
	if !labelsMatch(map[string]string{"app.kubernetes.io/name": "s3connector", "app.kubernetes.io/instance": "acme"}, np.Metadata.Labels) {
		t.Errorf("networkpolicy.yaml labels %v, want the tenant's labels", np.Metadata.Labels)
	}
}

// TestPrometheusRule: prometheusrule.yaml carries exactly the rule groups
// of metrics/alerts/s3connector.rules.yml (checked and unit-tested with
// promtool in ./metrics). `go test ./deploy -run PrometheusRule -update`
// regenerates it.
func TestPrometheusRule(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &want); err != nil || len(want.Groups) == 0 {
		t.Fatalf("%s: %v (%d groups)", rulesFile, err, len(want.Groups))
	}
	if *update {
		var src struct {
			Groups yaml.Node `yaml:"groups"`
		}
		if err := yaml.Unmarshal(rules, &src); err != nil {
			t.Fatal(err)
		}
		writePrometheusRule(t, &src.Groups)
	}
	var got struct {
		Spec struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	decodeFile(t, prometheusRuleFile, &got)
	gotJSON, _ := json.Marshal(got.Spec.Groups)
	wantJSON, _ := json.Marshal(want.Groups)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("%s differs from %s: run `go test ./deploy -run PrometheusRule -update`", prometheusRuleFile, rulesFile)
	}
}

func writePrometheusRule(t *testing.T, groups *yaml.Node) {
	t.Helper()
	type meta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	doc := struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   meta   `yaml:"metadata"`
		Spec       struct {
			Groups *yaml.Node `yaml:"groups"`
		} `yaml:"spec"`
	}{
		APIVersion: "monitoring.coreos.com/v1",
		Kind:       "PrometheusRule",
		Metadata: meta{Name: "s3connector-acme", Labels: map[string]string{
			"app.kubernetes.io/name":     "s3connector",
			"app.kubernetes.io/instance": "acme",
		}},
	}
	doc.Spec.Groups = groups
	var buf bytes.Buffer
	buf.WriteString("# The alerting rules of ../metrics/alerts/s3connector.rules.yml for the\n# Prometheus Operator. Generated; do not edit:\n")
	buf.WriteString("# go test ./deploy -run PrometheusRule -update\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prometheusRuleFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// show prints an optional field.
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}
