package check

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// objects are the Kubernetes objects of deploy/kubernetes, by kind.
type objects struct {
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
}

// decode decodes one document strictly (no unknown or misspelt field, no
// wrong type) into the API type its apiVersion and kind name.
func (o *objects) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var into any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		o.configMaps, into = append(o.configMaps, v), v
	case "v1 Service":
		v := &corev1.Service{}
		o.services, into = append(o.services, v), v
	case "apps/v1 Deployment":
		v := &appsv1.Deployment{}
		o.deployments, into = append(o.deployments, v), v
	case "apps/v1 StatefulSet":
		v := &appsv1.StatefulSet{}
		o.statefulSets, into = append(o.statefulSets, v), v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		o.pdbs, into = append(o.pdbs, v), v
	default:
		return fmt.Errorf("unexpected %s %s: add its type to the test", tm.APIVersion, tm.Kind)
	}
	return yaml.UnmarshalStrict(doc, into)
}

// loadManifests decodes every document of every deploy/kubernetes file.
func loadManifests(t *testing.T) *objects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	o := &objects{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			if err := o.decode([]byte(doc)); err != nil {
				t.Errorf("%s, document %d: %v", filepath.Base(f), i+1, err)
			}
		}
	}
	return o
}

// workload is a Deployment's or a StatefulSet's selector and pod template.
type workload struct {
	name     string
	selector *metav1.LabelSelector
	template corev1.PodTemplateSpec
}

func (o *objects) workloads() []workload {
	var ws []workload
	for _, d := range o.deployments {
		ws = append(ws, workload{"Deployment " + d.Name, d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range o.statefulSets {
		ws = append(ws, workload{"StatefulSet " + s.Name, s.Spec.Selector, s.Spec.Template})
	}
	return ws
}

// TestManifestsAreConsistent: selectors select their pods, Services and
// PDBs select a workload, target ports and probe ports name container
// ports, and every container runs hardened with an image tag.
func TestManifestsAreConsistent(t *testing.T) {
	o := loadManifests(t)
	if len(o.deployments) != 1 || len(o.statefulSets) != 1 || len(o.services) != 2 || len(o.pdbs) != 2 {
		t.Fatalf("want a tetherd Deployment, a NATS StatefulSet, a Service and a PodDisruptionBudget for each; got %d, %d, %d, %d",
			len(o.deployments), len(o.statefulSets), len(o.services), len(o.pdbs))
	}
	selects := func(sel map[string]string) *workload {
		for _, w := range o.workloads() {
			if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(w.template.Labels)) {
				return &w
			}
		}
		return nil
	}
	for _, w := range o.workloads() {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s: its selector does not select its pods (%v)", w.name, err)
		}
		checkPod(t, w)
	}
	for _, s := range o.services {
		w := selects(s.Spec.Selector)
		if w == nil {
			t.Errorf("Service %s selects no workload", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasPort(w.template, p.TargetPort.String()) {
				t.Errorf("Service %s: targetPort %s is no container port of %s", s.Name, p.TargetPort.String(), w.name)
			}
		}
	}
	for _, p := range o.pdbs {
		if w := selects(p.Spec.Selector.MatchLabels); w == nil || p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: want maxUnavailable 1 of a workload it selects", p.Name)
		}
	}
}

// checkPod checks a pod template's containers: probes on named ports, an
// image with a tag, and a hardened security context.
func checkPod(t *testing.T, w workload) {
	t.Helper()
	spec := w.template.Spec
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: the pod must run as non-root (runAsNonRoot)", w.name)
	}
	for _, c := range spec.Containers {
		if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q has no fixed tag", w.name, c.Image)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || !hasPort(w.template, p.HTTPGet.Port.String()) {
				t.Errorf("%s: container %s needs HTTP readiness and liveness probes on a named container port", w.name, c.Name)
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
			!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL", w.name, c.Name)
		}
	}
}

// hasPort reports whether a container of the template has a port of that
// name or number.
func hasPort(tmpl corev1.PodTemplateSpec, port string) bool {
	for _, c := range tmpl.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// TestTetherdDeployment checks what a rolling deploy without loss needs:
// readiness on /readyz and liveness on /healthz, a preStop wait, a grace
// period that covers it and tetherd's --drain-grace (read from the
// ConfigMap by tetherd itself), a surge before any pod goes away, and
// liveness settings below common load balancers' idle timeouts.
func TestTetherdDeployment(t *testing.T) {
	o := loadManifests(t)
	d := o.deployments[0]
	var cm *corev1.ConfigMap
	for _, c := range o.configMaps {
		if c.Name == "tetherd" {
			cm = c
		}
	}
	if cm == nil || cm.Data["tetherd.conf"] == "" {
		t.Fatal("no ConfigMap tetherd with tetherd.conf")
	}
	settings := printConfig(t, cm.Data["tetherd.conf"], "--tls-cert=", "--tls-key=", "--tokens-file=", "--insecure")
	drainGrace := duration(t, "drain-grace", settings["drain-grace"])
	if settings["broker"] != "nats" || !strings.Contains(settings["nats-url"], "nats-0.nats:4222") {
		t.Errorf("tetherd.conf: broker %s, nats-url %s; want nats and the StatefulSet's servers", settings["broker"], settings["nats-url"])
	}
	if p := settings["profile"]; p != "default" && p != "mobile" {
		t.Errorf("tetherd.conf: profile %s: want default or mobile, whose heartbeats (15s, 25s) stay below a 60s load balancer idle timeout", p)
	}

	c := d.Spec.Template.Spec.Containers[0]
	if got := c.Args; !slices.Equal(got, []string{"--config", "/etc/tether/conf/tetherd.conf"}) {
		t.Errorf("args %q; want the ConfigMap's tetherd.conf", got)
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port.String() != "admin" {
		t.Errorf("readiness probe %s on %s; want /readyz on admin", p.Path, p.Port.String())
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port.String() != "admin" {
		t.Errorf("liveness probe %s on %s; want /healthz on admin", p.Path, p.Port.String())
	}
	if c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Error("probes must use HTTPS: with tls-cert, tetherd serves TLS on the admin port too")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("want a preStop sleep: endpoints and load balancers stop sending new clients before SIGTERM")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace < preStop+drainGrace || grace > preStop+drainGrace+15*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v; want preStop %v + drain-grace %v, plus a few seconds", grace, preStop, drainGrace)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge == nil || ru.MaxSurge.IntValue() < 1 {
		t.Error("rolling update: want maxUnavailable 0 and maxSurge 1, so a ready pod takes the sessions a draining one hands off")
	}
	if period := c.ReadinessProbe.PeriodSeconds * c.ReadinessProbe.FailureThreshold; time.Duration(period)*time.Second > preStop {
		t.Errorf("readiness fails after %ds, later than the preStop wait %v", period, preStop)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["TETHER_SERVER_ID"] != "metadata.name" {
		t.Error("want TETHER_SERVER_ID from metadata.name: every node needs its own server id")
	}
}
