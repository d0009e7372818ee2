package config

import "testing"

func TestRoleARNPartition(t *testing.T) {
	tests := []struct{ region, want string }{
		{"ap-southeast-2", "arn:aws:iam::123456789012:role/r"},
		{"cn-north-1", "arn:aws-cn:iam::123456789012:role/r"},
		{"us-gov-west-1", "arn:aws-us-gov:iam::123456789012:role/r"},
	}
	for _, tt := range tests {
		c := Connection{AccountID: "123456789012", RoleName: "r", Region: tt.region}
		if got := c.RoleARN(); got != tt.want {
			t.Errorf("RoleARN in %s = %q, want %q", tt.region, got, tt.want)
		}
	}
}
