// Package archive is the move protocol: after an import, a file is copied
// server-side into <base_path>archive/ (or <base_path>error/ when the
// importer rejected it) under a name that is a function of the source
// version (so a retried move targets the same name and a re-upload gets its
// own), keeping its content type, user metadata and encryption, and only
// then deleted from the inbox, conditionally on the version that was
// imported. Nothing else lives here.
//
// The invariants it keeps (see ARCHITECTURE.md): a file leaves the inbox
// only after a complete copy exists (I1); archive names are unique per
// source version by construction (I2); the delete is pinned to the
// imported ETag and never names a version, so on a versioned bucket it only
// adds a delete marker (I3, I11); SSE-S3 and SSE-KMS objects are archived with the same encryption
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

// Version identifies the version of a source object a move copies: its
// version id on a versioned bucket, else its ETag and LastModified.
type Version struct {
	// ID is the version id GetObject returned; "" or "null" (an unversioned
	// or versioning-suspended bucket) mean the object has no version id of
	// its own.
	ID string
	// ETag as listed (quotes are ignored) and LastModified as listed.
	ETag     string
	Modified time.Time
}

// Versioned reports whether v names a version S3 keeps apart from later
// uploads under the same key. The version id "null" does not: on a bucket
// whose versioning is suspended a new upload replaces the null version.
func (v Version) Versioned() bool { return v.ID != "" && v.ID != "null" }

// tag is the short, stable hash of the version in archived names: 12 hex
// digits (48 bits) of SHA-256 over the version id, or over the ETag and
// the modification time (to the nanosecond S3 gave) when there is none.
func (v Version) tag() string {
	in := "version:" + v.ID
	if !v.Versioned() {
		in = "etag:" + strings.Trim(v.ETag, `"`) + "\x00" + v.Modified.UTC().Format(time.RFC3339Nano)
	}
	sum := sha256.Sum256([]byte(in))
	return hex.EncodeToString(sum[:6])
}

// DestKey names the archived copy of one version of relKey (the key
// relative to the base path):
//
//	<base_path><folder><dir of relKey>/<stem>.<LastModified UTC>-<version tag><ext>
//
// for example orders/2026-11.csv last modified at 2026-11-22 10:49:10 UTC
// becomes archive/orders/2026-11.20261122T104910Z-3f9a1c0b7d2e.csv. The
// extension (from the last dot of the file name) stays last so tools still
// recognise the file type; a name without an extension, or starting with
// its only dot, gets the suffix at its end.
//
// The name is a function of the source version alone, never of the run or
// the clock: moving the same version again (a retry after a crash between
// copy and delete) targets the same name, so it is archived once (I2),
// while a re-upload under the same key is another version (another
// version id, or another ETag or LastModified) and gets its own name.
//
// When the result would exceed MaxDestLength (S3's 1,024-byte key limit,
// less the report suffix in error/) the stem is shortened and followed by
// "~" and a hash of the full relative key, which keeps it unique; when the
// folders alone are too deep for that, the copy goes to
// <base_path><folder>~long/<hash><suffix> instead (the report, or the log
// line of an archived file, names the original key).
func DestKey(basePath string, folder Folder, relKey string, v Version) string {
	dir, file := path.Split(relKey)
	stem, ext := splitExt(file)
	suffix := "." + v.Modified.UTC().Format(stampLayout) + "-" + v.tag() + ext
	prefix := basePath + string(folder) + dir
	limit := MaxDestLength(folder)
	if key := prefix + stem + suffix; len(key) <= limit {
		return key
	}
	sum := sha256.Sum256([]byte(relKey))
	hash := "~" + hex.EncodeToString(sum[:6])
	if room := limit - len(prefix) - len(suffix) - len(hash); room >= 0 {
		return prefix + truncateUTF8(stem, room) + hash + suffix
	}
	// Folders too deep: flatten under ~long/, keeping the extension when
	// there is room for it.
	long := basePath + string(folder) + LongFolder + hex.EncodeToString(sum[:8])
	if key := long + suffix; len(key) <= limit {
		return key
	}
	return long + strings.TrimSuffix(suffix, ext)
}

// LongFolder holds, under archive/ and error/, the copies of files whose
// folders are too deep for their name to fit under the same folders.
const LongFolder = "~long/"

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
