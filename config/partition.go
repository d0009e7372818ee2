package config

import "strings"

// Partition is the AWS partition of a region ("aws", "aws-cn",
// "aws-us-gov", ...), the second field of every ARN in it.
func Partition(region string) string {
	// Longest prefixes first: "us-iso-" must not shadow "us-isob-".
	for _, p := range []struct{ prefix, partition string }{
		{"us-gov-", "aws-us-gov"},
		{"us-isob-", "aws-iso-b"},
		{"us-isof-", "aws-iso-f"},
		{"us-iso-", "aws-iso"},
		{"eu-isoe-", "aws-iso-e"},
		{"eusc-", "aws-eusc"},
		{"cn-", "aws-cn"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
