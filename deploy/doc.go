// Package deploy holds the Kubernetes manifests for one tenant's s3connector
// (apply with `kubectl apply -k deploy/`). It has no Go code of its own; its
// tests validate the manifests with kubeconform against the Kubernetes and
// Prometheus Operator schemas of pinned releases, and check what the schemas
// cannot: the security settings, that the ConfigMap holds a configuration the
// daemon accepts, and that names, ports and labels agree across the files.
package deploy
