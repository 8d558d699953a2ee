// Package check holds the tests of tether's deployment files: the
// Dockerfile (parsed by BuildKit's parser, its build stage's go build
// commands run), the Kubernetes manifests in deploy/kubernetes (decoded
// strictly into the Kubernetes API types, their probes, drain timing and
// selectors checked) and the systemd unit. It is a module of its own, so
// that the Kubernetes and BuildKit packages stay out of tether's go.mod;
// .ci/run tests it.
package check
