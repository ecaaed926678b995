// Package deploy holds fleetflow's Kubernetes manifests (kustomize base,
// components and overlays, README "Run on Kubernetes"); it has no code.
// Its tests build every overlay with the kustomize API, decode every object
// strictly into its Kubernetes type and check the security settings on
// every workload.
package deploy
