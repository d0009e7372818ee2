package store_test

import (
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/store"
)

func TestConfigConnection(t *testing.T) {
	template := config.Connection{
		Name:       "template-name",
		AccountID:  "999999999999",
		ExternalID: "template-id",
		RoleName:   "template-role",
		Schedule:   "@every 1m",
		Workers:    4,
		Importer:   config.Importer{Type: "dir", Path: "/data/in"},
		Endpoint:   "https://s3.example",
	}
	c := store.Connection{
		Name:       "acme",
		Settings:   store.Settings{AccountID: "123456789012", Bucket: "acme-data", Region: "eu-west-1", BasePath: "in", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/k"},
		ExternalID: "generated-id",
		RoleName:   "s3connector-acme",
	}
	tests := []struct {
		status store.Status
		want   config.Status
	}{
		{store.StatusDraft, config.StatusDraft},
		{store.StatusValidated, config.StatusDraft},
		{store.StatusActive, config.StatusActive},
		{store.StatusDisabled, config.StatusDisabled},
	}
	for _, tt := range tests {
		c.Status = tt.status
		got := c.ConfigConnection(template)
		want := template
		want.Name, want.Status = "acme", tt.want
		want.AccountID, want.Bucket, want.Region, want.BasePath, want.KMSKeyARN = "123456789012", "acme-data", "eu-west-1", "in/", c.KMSKeyARN
		want.ExternalID, want.RoleName = "generated-id", "s3connector-acme"
		if got.Name != want.Name || got.Status != want.Status || got.AccountID != want.AccountID || got.Bucket != want.Bucket ||
			got.Region != want.Region || got.BasePath != want.BasePath || got.KMSKeyARN != want.KMSKeyARN ||
			got.ExternalID != want.ExternalID || got.RoleName != want.RoleName ||
			got.Schedule != want.Schedule || got.Workers != want.Workers || got.Importer.Path != want.Importer.Path || got.Endpoint != want.Endpoint {
			t.Errorf("%s: ConfigConnection = %+v\nwant %+v", tt.status, got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := store.Connection{
		Name:       "acme",
		Settings:   store.Settings{AccountID: "123456789012", Bucket: "acme-data", Region: "eu-west-1", BasePath: "in/"},
		ExternalID: "id",
		RoleName:   "s3connector-acme",
	}
	tests := []struct {
		name     string
		change   func(c *store.Connection)
		wantSame bool
	}{
		{"account", func(c *store.Connection) { c.AccountID = "210987654321" }, false},
		{"bucket", func(c *store.Connection) { c.Bucket = "other" }, false},
		{"region", func(c *store.Connection) { c.Region = "us-east-1" }, false},
		{"base path", func(c *store.Connection) { c.BasePath = "out/" }, false},
		{"kms key", func(c *store.Connection) { c.KMSKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/k" }, false},
		{"role", func(c *store.Connection) { c.RoleName = "other" }, false},
		{"external id", func(c *store.Connection) { c.ExternalID = "other" }, false},
		{"fields shifted", func(c *store.Connection) { c.Bucket, c.Region = "acme-dataeu-west-1", "" }, false},
		{"base path unnormalised", func(c *store.Connection) { c.BasePath = "in" }, true},
		{"status", func(c *store.Connection) { c.Status = store.StatusActive }, true},
		{"validation and times", func(c *store.Connection) {
			c.Validation = store.Validation{At: time.Now(), Passed: true}
			c.UpdatedAt = time.Now()
		}, true},
	}
	for _, tt := range tests {
		c := base
		tt.change(&c)
		if got := c.Fingerprint() == base.Fingerprint(); got != tt.wantSame {
			t.Errorf("%s: same fingerprint = %v, want %v", tt.name, got, tt.wantSame)
		}
	}
}
