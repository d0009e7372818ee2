package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// kubeconform validates manifests against JSON schemas that its users usually
// download from github.com/yannh/kubernetes-json-schema. These machines reach
// only the Go module proxy, so the tests make the same schemas from their
// sources, which `make tools` copies out of pinned modules into
// $S3CONNECTOR_TOOLS/k8s-openapi: the Kubernetes OpenAPI (Swagger 2.0) spec
// of k8s.io/kubernetes and the Prometheus Operator CRDs of
// github.com/prometheus-operator/prometheus-operator.
//
// The conversion follows kubeconform's scripts/openapi2jsonschema.py and the
// "standalone-strict" flavour of kubernetes-json-schema:
//   - one file per group/version/kind, named and placed where kubeconform
//     looks it up: v<version>-standalone-strict/<kind>[-<group>]-<version>.json;
//   - $ref kept, with every definition it reaches copied into the file;
//   - strict: an object schema with properties gets additionalProperties:
//     false, unless it preserves unknown fields;
//   - int-or-string becomes oneOf string/integer, Quantity oneOf
//     string/number (what the API server accepts);
//   - apiVersion and kind are pinned with enum;
//   - a CRD's metadata is checked as ObjectMeta, as the API server does.

// schemaSource is what `make tools` put in place.
type schemaSource struct {
	dir string
	// kubernetesVersion without the "v", as kubeconform's -kubernetes-version takes it.
	kubernetesVersion string
	swagger           string   // Kubernetes OpenAPI v2 spec
	crds              []string // CustomResourceDefinition YAML files
}

func findSchemaSource(t *testing.T) schemaSource {
	t.Helper()
	tools, err := miniotest.ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tools, "k8s-openapi")
	version, err := os.ReadFile(filepath.Join(dir, "KUBERNETES_VERSION"))
	if err != nil {
		t.Fatalf("Kubernetes OpenAPI spec not found (%v): run `make tools` to copy it into %s", err, dir)
	}
	crds, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRD files in %s (%v): run `make tools`", dir, err)
	}
	return schemaSource{
		dir:               dir,
		kubernetesVersion: strings.TrimPrefix(strings.TrimSpace(string(version)), "v"),
		swagger:           filepath.Join(dir, "swagger.json"),
		crds:              crds,
	}
}

const objectMetaRef = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

// writeSchemas converts src into out (kubeconform's -schema-location) and
// returns the schema files written, relative to out.
func writeSchemas(src schemaSource, out string) ([]string, error) {
	data, err := os.ReadFile(src.swagger)
	if err != nil {
		return nil, err
	}
	defs, schemas, err := swaggerSchemas(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.swagger, err)
	}
	for _, crd := range src.crds {
		data, err := os.ReadFile(crd)
		if err != nil {
			return nil, err
		}
		more, err := crdSchemas(data, defs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", crd, err)
		}
		for name, s := range more {
			schemas[name] = s
		}
	}
	dir := filepath.Join(out, "v"+src.kubernetesVersion+"-standalone-strict")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for name, s := range schemas {
		data, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, err
		}
		names = append(names, filepath.Join(filepath.Base(dir), name))
	}
	sort.Strings(names)
	return names, nil
}

// schemaFileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json.
func schemaFileName(group, version, kind string) string {
	name := strings.ToLower(kind)
	if group != "" {
		name += "-" + strings.ToLower(strings.Split(group, ".")[0])
	}
	return name + "-" + strings.ToLower(version) + ".json"
}

// swaggerSchemas returns the converted definitions of a Kubernetes OpenAPI
// v2 spec and one standalone schema per group/version/kind.
func swaggerSchemas(data []byte) (map[string]any, map[string]map[string]any, error) {
	var doc struct {
		Definitions map[string]any `json:"definitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, err
	}
	if len(doc.Definitions) == 0 {
		return nil, nil, errors.New("no definitions")
	}
	if _, ok := doc.Definitions[objectMetaRef]; !ok {
		return nil, nil, fmt.Errorf("no definition %s", objectMetaRef)
	}
	defs := make(map[string]any, len(doc.Definitions))
	for name, d := range doc.Definitions {
		if strings.HasSuffix(name, ".api.resource.Quantity") {
			defs[name] = map[string]any{"oneOf": []any{
				map[string]any{"type": "string"}, map[string]any{"type": "number"},
			}}
			continue
		}
		defs[name] = convert(d)
	}
	schemas := map[string]map[string]any{}
	for name, d := range defs {
		root, ok := d.(map[string]any)
		if !ok {
			continue
		}
		gvks, _ := root["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if version == "" || kind == "" {
				return nil, nil, fmt.Errorf("%s: incomplete x-kubernetes-group-version-kind %v", name, gvk)
			}
			schemas[schemaFileName(group, version, kind)] = standalone(root, group, version, kind, defs)
		}
	}
	return defs, schemas, nil
}

// crdSchemas returns one standalone schema per served version of each
// CustomResourceDefinition in data (YAML, one or more documents).
func crdSchemas(data []byte, defs map[string]any) (map[string]map[string]any, error) {
	schemas := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var crd struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Group string `yaml:"group"`
				Names struct {
					Kind string `yaml:"kind"`
				} `yaml:"names"`
				Versions []struct {
					Name   string `yaml:"name"`
					Served bool   `yaml:"served"`
					Schema struct {
						OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
					} `yaml:"schema"`
				} `yaml:"versions"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&crd)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			s := v.Schema.OpenAPIV3Schema
			if s == nil {
				return nil, fmt.Errorf("%s %s: no openAPIV3Schema", crd.Spec.Names.Kind, v.Name)
			}
			root := convert(s).(map[string]any)
			props, _ := root["properties"].(map[string]any)
			if props == nil {
				return nil, fmt.Errorf("%s %s: schema has no properties", crd.Spec.Names.Kind, v.Name)
			}
			props["metadata"] = map[string]any{"$ref": "#/definitions/" + objectMetaRef}
			name := schemaFileName(crd.Spec.Group, v.Name, crd.Spec.Names.Kind)
			schemas[name] = standalone(root, crd.Spec.Group, v.Name, crd.Spec.Names.Kind, defs)
		}
	}
	if len(schemas) == 0 {
		return nil, errors.New("no served CustomResourceDefinition version")
	}
	return schemas, nil
}

// standalone copies root, pins apiVersion and kind, and adds every definition
// root reaches.
func standalone(root map[string]any, group, version, kind string, defs map[string]any) map[string]any {
	s := make(map[string]any, len(root)+2)
	for k, v := range root {
		s[k] = v
	}
	props := map[string]any{}
	if p, ok := root["properties"].(map[string]any); ok {
		for k, v := range p {
			props[k] = v
		}
	}
	apiVersion := version
	if group != "" {
		apiVersion = group + "/" + version
	}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{apiVersion}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{kind}}
	s["properties"] = props
	s["definitions"] = reachable(s, defs)
	return s
}

// reachable returns the definitions that node refers to, directly or not.
func reachable(node any, defs map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			for k, v := range n {
				if ref, ok := v.(string); ok && k == "$ref" {
					name, ok := strings.CutPrefix(ref, "#/definitions/")
					if !ok {
						continue
					}
					if _, seen := out[name]; seen {
						continue
					}
					if d, ok := defs[name]; ok {
						out[name] = d
						walk(d)
					}
					continue
				}
				if k == "definitions" {
					continue
				}
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	walk(node)
	return out
}

// convert returns a copy of the schema node s, made strict, with
// int-or-string spelled out. It walks the schema structure (properties,
// items, ...) rather than every map, so a field that happens to be called
// "properties" is not mistaken for a keyword.
func convert(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	if m["format"] == "int-or-string" {
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string"}, map[string]any{"type": "integer"},
		}}
	}
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		switch k {
		case "properties", "patternProperties", "definitions":
			if props, ok := v.(map[string]any); ok {
				converted := make(map[string]any, len(props))
				for name, p := range props {
					converted[name] = convert(p)
				}
				v = converted
			}
		case "items", "additionalProperties", "not":
			v = convert(v)
		case "allOf", "anyOf", "oneOf":
			if list, ok := v.([]any); ok {
				converted := make([]any, len(list))
				for i, p := range list {
					converted[i] = convert(p)
				}
				v = converted
			}
		}
		out[k] = v
	}
	_, hasProps := out["properties"]
	_, hasAdditional := out["additionalProperties"]
	preserve, _ := out["x-kubernetes-preserve-unknown-fields"].(bool)
	if hasProps && !hasAdditional && !preserve {
		out["additionalProperties"] = false
	}
	return out
}
