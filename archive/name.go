// Package archive is the move protocol: after an import, a file is copied
// server-side into <base_path>archive/ (or <base_path>error/ when the
// importer rejected it) under a name that can never overwrite an earlier
// one, keeping its content type, user metadata and encryption, and only
// then deleted from the inbox, conditionally on the version that was
// imported. Nothing else lives here.
//
// The invariants it keeps (see ARCHITECTURE.md): a file leaves the inbox
// only after a complete copy exists (I1); archive names are unique by
// construction (I2); the delete is pinned to the imported ETag or version
// (I3); SSE-S3 and SSE-KMS objects are archived with the same encryption
// and KMS key (I6).
package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Folder is a destination folder under the connection's base path.
type Folder string

// The two destinations. They match connector.ArchiveFolder and
// connector.ErrorFolder, which the lister skips.
const (
	Archive Folder = "archive/"
	Error   Folder = "error/"
)

// MaxKeyLength is S3's limit on the UTF-8 length of an object key.
const MaxKeyLength = 1024

// stampLayout is the UTC timestamp component of archived names.
const stampLayout = "20060102T150405Z"

// ReportSuffix is appended to an error/ file's name to name its report.
const ReportSuffix = ".error.json"

// DestKey names the archived copy of relKey (the key relative to the base
// path):
//
//	<base_path><folder><dir of relKey>/<stem>.<UTC time>-<run id><ext>
//
// for example orders/2026-11.csv moved at 2026-11-22 10:49:10 UTC by run
// 3f9a1c0b7d2e becomes archive/orders/2026-11.20261122T104910Z-3f9a1c0b7d2e.csv.
// The extension (from the last dot of the file name) stays last so tools
// still recognise the file type; a name without an extension, or starting
// with its only dot, gets the suffix at its end.
//
// Names are unique by construction: a run lists each key once and run ids
// are unique, so no two moves produce the same (relKey, time, run id). When
// the result would exceed MaxDestLength (S3's 1,024-byte key limit, less
// the report suffix in error/) the stem is shortened and followed by "~"
// and a hash of the full relative key, which keeps it unique.
func DestKey(basePath string, folder Folder, relKey string, at time.Time, runID string) string {
	dir, file := path.Split(relKey)
	stem, ext := splitExt(file)
	suffix := "." + at.UTC().Format(stampLayout) + "-" + runID + ext
	prefix := basePath + string(folder) + dir
	limit := MaxDestLength(folder)
	if key := prefix + stem + suffix; len(key) <= limit {
		return key
	}
	sum := sha256.Sum256([]byte(relKey))
	hash := "~" + hex.EncodeToString(sum[:6])
	room := limit - len(prefix) - len(suffix) - len(hash)
	if room < 0 {
		room = 0
	}
	return prefix + truncateUTF8(stem, room) + hash + suffix
}

// MaxDestLength is the longest destination key in folder: S3's limit, and
// in error/ room for the report's name (ReportKey) as well.
func MaxDestLength(folder Folder) int {
	if folder == Error {
		return MaxKeyLength - len(ReportSuffix)
	}
	return MaxKeyLength
}

// ReportKey names the sidecar report of an error/ file.
func ReportKey(destKey string) string { return destKey + ReportSuffix }

func splitExt(file string) (stem, ext string) {
	i := strings.LastIndexByte(file, '.')
	if i <= 0 || i == len(file)-1 {
		return file, ""
	}
	return file[:i], file[i:]
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
