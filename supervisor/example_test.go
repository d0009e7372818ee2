package supervisor_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
	"github.com/s3connector/s3connector/supervisor"
)

// The daemon's wiring, as cmd/s3connector does it: Run in its own
// goroutine, Apply whenever the wanted set changes (the configuration
// file's connections and stored ones, together), States for /status and
// /readyz, Stop with the shutdown grace. (Not run: it needs AWS.)
func Example() {
	ctx := context.Background()
	cfg, err := config.Load("s3connector.yaml")
	if err != nil {
		log.Fatal(err)
	}
	platform, err := connector.LoadPlatformConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		log.Fatal(err)
	}
	sup := supervisor.New(supervisor.Options{Platform: platform, Metrics: m, Logger: zap.NewNop()})
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	// Connections created through an API are applied with the file's; only
	// the active ones run, and a second Apply touches only what changed.
	var stored []config.Connection
	if err := sup.Apply(cfg.PrincipalARN, slices.Concat(cfg.Connections, stored)); err != nil {
		log.Fatal(err)
	}
	for _, st := range sup.States() {
		fmt.Println(st.Name(), st.Phase, st.Ready(), st.Reason)
	}

	stopCtx, cancel := context.WithTimeout(ctx, cfg.ShutdownGrace)
	defer cancel()
	if err := sup.Stop(stopCtx); err != nil {
		fmt.Println("shutdown grace over; files in progress stay in the inbox:", err)
	}
	<-done
}
