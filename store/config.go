package store

import "github.com/s3connector/s3connector/config"

// ConfigConnection returns the connection as the daemon runs it: template,
// the operator's settings for API-created connections (importer, schedule,
// workers, limits, endpoints), with the stored connection's name, settings,
// role and External ID in place of the template's. Only an active
// connection is ingested: validated becomes config.StatusDraft, since the
// configuration has no such state.
//
// The result shares template's slices and maps (Include, Importer.Command,
// Importer.Headers, ...); treat them as read-only. Callers validate it as
// they validate a connection from the file.
func (c Connection) ConfigConnection(template config.Connection) config.Connection {
	cc := template
	cc.Name = c.Name
	cc.AccountID = c.AccountID
	cc.Bucket = c.Bucket
	cc.Region = c.Region
	cc.BasePath = config.NormalizeBasePath(c.BasePath)
	cc.KMSKeyARN = c.KMSKeyARN
	cc.RoleName = c.RoleName
	cc.ExternalID = c.ExternalID
	switch c.Status {
	case StatusActive:
		cc.Status = config.StatusActive
	case StatusDisabled:
		cc.Status = config.StatusDisabled
	default:
		cc.Status = config.StatusDraft
	}
	return cc
}
