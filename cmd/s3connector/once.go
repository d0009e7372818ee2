package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/store"
)

// onceConnections picks what `run --once` ingests: the active connections
// of the configuration file and of the store in data_dir (run with the
// admin template, as the daemon runs them), or the named one, which must
// be active.
//
// The store is opened only to read it and closed before anything runs, so
// a daemon can start meanwhile. While a daemon holds it, the stored
// connections are its to run: without a name they are skipped with a line
// on out saying so; a stored connection asked for by name is an error.
func onceConnections(ctx context.Context, cfg *config.Config, name, file string, out io.Writer, log *zap.Logger) ([]config.Connection, error) {
	stored, storeErr := readStored(ctx, cfg, log)
	if storeErr != nil && !errors.Is(storeErr, store.ErrLocked) {
		return nil, storeErr
	}
	if name != "" {
		if _, ok := cfg.Connection(name); ok {
			return activeConnections(cfg, name, file)
		}
		if storeErr != nil {
			return nil, fmt.Errorf("connection %q is not in %s, and %w; a stored connection is run by the daemon using the store", name, file, storeErr)
		}
		i := slices.IndexFunc(stored, func(c config.Connection) bool { return c.Name == name })
		if i < 0 {
			where := file
			if cfg.DataDir != "" {
				where += " or in the store of data_dir " + cfg.DataDir
			}
			return nil, fmt.Errorf("%w: no connection named %q in %s", errUsage, name, where)
		}
		if c := stored[i]; c.Status != config.StatusActive {
			return nil, fmt.Errorf("connection %q of the store in data_dir %s is %s, not active: validate and activate it on the admin API or page", name, cfg.DataDir, c.Status)
		}
		return stored[i : i+1], nil
	}
	var conns []config.Connection
	for _, c := range slices.Concat(cfg.Connections, stored) {
		if c.Status == config.StatusActive {
			conns = append(conns, c)
		}
	}
	if storeErr != nil {
		fmt.Fprintf(out, "stored connections skipped: %v; the daemon using it runs them\n", storeErr)
	}
	if len(conns) == 0 {
		where := file
		if cfg.DataDir != "" && storeErr == nil {
			where += " and the store of data_dir " + cfg.DataDir
		}
		return nil, fmt.Errorf("%s: no connection has status: active; validate a connection, then set its status to active", where)
	}
	return conns, nil
}

// readStored returns the store's connections as the daemon runs them
// (leaving out, and logging, those the file's connections make invalid);
// none without a data_dir or a store file. The store is closed again.
func readStored(ctx context.Context, cfg *config.Config, log *zap.Logger) ([]config.Connection, error) {
	path := cfg.StorePath()
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	st, err := store.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the store of data_dir (%s): %w", cfg.DataDir, err)
	}
	defer st.Close()
	list, err := st.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the store of data_dir (%s): %w", cfg.DataDir, err)
	}
	run, _ := storedToRun(cfg.PrincipalARN, cfg.Admin.Template.Connection(), cfg.Connections, list, log)
	return run, nil
}
