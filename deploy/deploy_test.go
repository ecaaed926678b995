package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/fleetflow/fleetflow/internal/config"
)

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests use; unknown fields fail the strict decoding like the
// Kubernetes types'.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// built is one overlay, every object decoded into its type.
type built struct {
	deployments  []appsv1.Deployment
	jobs         []batchv1.Job
	pdbs         []policyv1.PodDisruptionBudget
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	scaled       []scaledObject
	configMaps   []corev1.ConfigMap
	services     []corev1.Service
	serviceAccts []corev1.ServiceAccount
}

// build runs kustomize on overlay (the kustomize Go API, root-only load
// restrictions as `kustomize build` has them) and decodes every object
// strictly: a field its Kubernetes type does not have fails.
func build(t *testing.T, overlay string) built {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), "overlays/"+overlay)
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", overlay, err)
	}
	var b built
	for _, r := range rm.Resources() {
		raw, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind := r.GetKind()
		into := map[string]any{
			"Deployment": &appsv1.Deployment{}, "Job": &batchv1.Job{}, "PodDisruptionBudget": &policyv1.PodDisruptionBudget{},
			"HorizontalPodAutoscaler": &autoscalingv2.HorizontalPodAutoscaler{}, "ScaledObject": &scaledObject{},
			"ConfigMap": &corev1.ConfigMap{}, "Service": &corev1.Service{}, "ServiceAccount": &corev1.ServiceAccount{},
		}[kind]
		if into == nil {
			t.Fatalf("overlays/%s: %s %s: no type to check it against", overlay, kind, r.GetName())
		}
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			t.Fatalf("overlays/%s: %s %s does not decode strictly: %v", overlay, kind, r.GetName(), err)
		}
		switch o := into.(type) {
		case *appsv1.Deployment:
			b.deployments = append(b.deployments, *o)
		case *batchv1.Job:
			b.jobs = append(b.jobs, *o)
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, *o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			b.hpas = append(b.hpas, *o)
		case *scaledObject:
			b.scaled = append(b.scaled, *o)
		case *corev1.ConfigMap:
			b.configMaps = append(b.configMaps, *o)
		case *corev1.Service:
			b.services = append(b.services, *o)
		case *corev1.ServiceAccount:
			b.serviceAccts = append(b.serviceAccts, *o)
		}
	}
	return b
}

func (b built) names(kind string) []string {
	var out []string
	switch kind {
	case "Deployment":
		for _, d := range b.deployments {
			out = append(out, d.Name)
		}
	case "ScaledObject":
		for _, s := range b.scaled {
			out = append(out, s.Spec.ScaleTargetRef.Name)
		}
	case "HorizontalPodAutoscaler":
		for _, h := range b.hpas {
			out = append(out, h.Spec.ScaleTargetRef.Name)
		}
	}
	slices.Sort(out)
	return out
}

var overlays = []string{"dev", "prod", "prod-hpa", "central", "edge"}

// overlayWants is what each overlay runs: its Deployments and which of
// them an autoscaler scales (KEDA's ScaledObjects or HPAs).
var overlayWants = map[string]struct{ deployments, scaled []string }{
	// Single-site: the workflow workers, the bridge and the site's broker.
	"dev":      {[]string{"mosquitto", "workers-bridge", "workers-maintenance", "workers-missions", "workers-ota"}, nil},
	"prod":     {[]string{"mosquitto", "workers-bridge", "workers-maintenance", "workers-missions", "workers-ota"}, []string{"workers-maintenance", "workers-missions", "workers-ota"}},
	"prod-hpa": {[]string{"mosquitto", "workers-bridge", "workers-maintenance", "workers-missions", "workers-ota"}, []string{"workers-maintenance", "workers-missions", "workers-ota"}},
	// Multi-site: the control plane has no broker and no bridge; each
	// site's edge has its broker and its edge worker.
	"central": {[]string{"workers-maintenance", "workers-missions", "workers-ota"}, []string{"workers-maintenance", "workers-missions", "workers-ota"}},
	"edge":    {[]string{"mosquitto", "workers-edge"}, nil},
}

// Each overlay builds and holds what it is for.
func TestOverlaysBuild(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			b := build(t, o)
			want := overlayWants[o]
			if got := b.names("Deployment"); !slices.Equal(got, want.deployments) {
				t.Fatalf("Deployments %v, want %v", got, want.deployments)
			}
			// Every Deployment that polls a workflow task queue scales on
			// it: KEDA's temporal scaler, or HPAs in prod-hpa.
			scaledNames := append(b.names("ScaledObject"), b.names("HorizontalPodAutoscaler")...)
			if !slices.Equal(scaledNames, want.scaled) {
				t.Fatalf("autoscaled %v, want %v", scaledNames, want.scaled)
			}
			// Robots are on the warehouse network, not in the cluster: a
			// production broker is reachable from outside it.
			for _, svc := range b.services {
				if svc.Name == "mosquitto" && o != "dev" && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
					t.Fatalf("%s: the broker's Service is %q: robots outside the cluster cannot reach it", o, svc.Spec.Type)
				}
				if svc.Name == "mosquitto" && svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(svc.Spec.LoadBalancerSourceRanges) == 0 {
					t.Fatalf("%s: the broker's LoadBalancer is open to every address", o)
				}
			}
			if o == "dev" && len(b.pdbs) != 0 {
				t.Fatalf("dev runs one replica each: its PodDisruptionBudgets would block drains")
			}
			for _, d := range b.deployments {
				if (d.Name == "workers-bridge" || d.Name == "workers-edge") && (d.Spec.Replicas == nil || *d.Spec.Replicas != 1) {
					t.Fatal("one bridge per broker: its change detection follows each robot's states in order")
				}
				if (d.Name == "workers-bridge" || d.Name == "workers-edge") && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Fatalf("%s runs a site's bridge: replaced by Recreate, never two at once (each would count every state)", d.Name)
				}
			}
			for _, s := range b.scaled {
				d := b.deployment(t, s.Spec.ScaleTargetRef.Name)
				if len(s.Spec.Triggers) != 1 || s.Spec.Triggers[0].Type != "temporal" {
					t.Fatalf("%s: want one trigger of type temporal: %+v", s.Metadata.Name, s.Spec.Triggers)
				}
				md := s.Spec.Triggers[0].Metadata
				for _, k := range []string{"endpoint", "namespace", "taskQueue", "targetQueueSize"} {
					if md[k] == "" {
						t.Fatalf("%s: temporal scaler without %s", s.Metadata.Name, k)
					}
				}
				if q := taskQueues(d); !slices.Equal(q, []string{md["taskQueue"]}) {
					t.Fatalf("%s scales on task queue %s but its Deployment polls %v", s.Metadata.Name, md["taskQueue"], q)
				}
				if md["namespace"] != "fleetflow" || md["endpoint"] != "temporal-frontend.temporal.svc:7233" {
					t.Fatalf("%s: scaler on %s/%s, the workers' temporal.yaml says temporal-frontend.temporal.svc:7233/fleetflow", s.Metadata.Name, md["endpoint"], md["namespace"])
				}
			}
			// Every PodDisruptionBudget selects a Deployment of the overlay.
			for _, p := range b.pdbs {
				found := false
				for _, d := range b.deployments {
					if matches(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
						found = true
					}
				}
				if !found {
					t.Fatalf("PodDisruptionBudget %s selects no pod of the overlay", p.Name)
				}
			}
		})
	}
}

func (b built) deployment(t *testing.T, name string) appsv1.Deployment {
	for _, d := range b.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s", name)
	return appsv1.Deployment{}
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// taskQueues are the task queues a workers container polls (--task-queues).
func taskQueues(d appsv1.Deployment) []string {
	cmd := d.Spec.Template.Spec.Containers[0].Command
	for i, a := range cmd {
		if a == "--task-queues" && i+1 < len(cmd) {
			return strings.Split(cmd[i+1], ",")
		}
	}
	return nil
}

// The security settings on every workload of every overlay: non-root,
// read-only root filesystem, no privilege escalation, every capability
// dropped, the RuntimeDefault seccomp profile, no service-account token,
// requests and limits; Deployments have liveness and readiness probes and
// a grace period longer than their workers' stop timeout.
func TestWorkloadPolicy(t *testing.T) {
	for _, o := range overlays {
		b := build(t, o)
		type workload struct {
			name string
			pod  corev1.PodSpec
			long bool // a Deployment: probes and grace period apply
		}
		var ws []workload
		for _, d := range b.deployments {
			ws = append(ws, workload{"Deployment " + d.Name, d.Spec.Template.Spec, true})
		}
		for _, j := range b.jobs {
			ws = append(ws, workload{"Job " + j.Name, j.Spec.Template.Spec, false})
		}
		for _, w := range ws {
			where := fmt.Sprintf("overlays/%s: %s", o, w.name)
			p := w.pod
			if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service-account token", where)
			}
			sc := p.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("%s: not non-root", where)
			}
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: no RuntimeDefault seccomp profile", where)
			}
			for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
				cw := where + " container " + c.Name
				csc := c.SecurityContext
				if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
					t.Errorf("%s: root filesystem writable", cw)
				}
				if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
					t.Errorf("%s: privilege escalation allowed", cw)
				}
				if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
					t.Errorf("%s: capabilities not all dropped", cw)
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[r]; !ok {
						t.Errorf("%s: no %s request", cw, r)
					}
					if _, ok := c.Resources.Limits[r]; !ok {
						t.Errorf("%s: no %s limit", cw, r)
					}
				}
				for _, e := range c.Env {
					if secretish(e.Name) && e.Value != "" {
						t.Errorf("%s: secret %s given as a literal value, not from a Secret", cw, e.Name)
					}
				}
			}
			if !w.long {
				continue
			}
			c := p.Containers[0]
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: liveness and readiness probes required", where)
			}
			if c.Name == "workers" {
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
					c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("%s: probes must be /healthz (liveness) and /readyz (readiness)", where)
				}
				stop := time.Duration(0)
				for _, e := range c.Env {
					if e.Name == "FLEETFLOW_WORKER_STOP_TIMEOUT" {
						stop, _ = time.ParseDuration(e.Value)
					}
				}
				grace := time.Duration(0)
				if p.TerminationGracePeriodSeconds != nil {
					grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
				}
				if stop <= 0 || grace < stop+15*time.Second {
					t.Errorf("%s: grace period %s must exceed the workers' stop timeout %s by 15 s", where, grace, stop)
				}
			}
		}
	}
}

func secretish(name string) bool {
	n := strings.ToUpper(name)
	return strings.Contains(n, "PASSWORD") || strings.Contains(n, "API_KEY") || strings.Contains(n, "SECRET") || n == "DATABASE_URL" || strings.HasSuffix(n, "URL_QUERY")
}

// The workers' configuration in the ConfigMap loads as the workers load it
// (unknown fields fail), and names no secret.
func TestShippedConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("base/temporal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("base/temporal.yaml", podFiles(t))
	if err != nil {
		t.Fatalf("base/temporal.yaml: %v", err)
	}
	if cfg.Worker.HTTPAddr != "0.0.0.0:9090" || cfg.Temporal.Namespace != "fleetflow" || cfg.Artifacts.TrustedKeys == "" {
		t.Fatalf("the cluster configuration: http %s, namespace %s, trusted keys %q", cfg.Worker.HTTPAddr, cfg.Temporal.Namespace, cfg.Artifacts.TrustedKeys)
	}
	for _, word := range []string{"password:", "apiKey:", "secret:"} {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(word))) {
			t.Fatalf("base/temporal.yaml holds %s; secrets come from the environment", word)
		}
	}
}

// Every metric an autoscaler of the manifests uses is one a workers
// process exposes (deploy/metrics.txt, captured from one).
func TestAutoscalerMetricsExist(t *testing.T) {
	have := metricNames(t)
	b := build(t, "prod-hpa")
	n := 0
	for _, h := range b.hpas {
		for _, m := range h.Spec.Metrics {
			if m.Type == autoscalingv2.PodsMetricSourceType {
				n += requireMetricsExist(t, have, "HPA "+h.Name, m.Pods.Metric.Name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no HPA uses the workers' own metrics")
	}
}

// metricNames are the workers' metric names (metrics.txt).
func metricNames(t *testing.T) map[string]bool {
	raw, err := os.ReadFile("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			have[l] = true
		}
	}
	return have
}

var metricRef = regexp.MustCompile(`\b(?:fleetflow|temporal)_[a-z0-9_]+`)

// requireMetricsExist fails for every fleetflow_* or temporal_* name in
// expr that the workers do not expose.
func requireMetricsExist(t *testing.T, have map[string]bool, where, expr string) int {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	for _, m := range refs {
		if !have[m] {
			t.Errorf("%s uses metric %s, which the workers do not expose (deploy/metrics.txt): %s", where, m, expr)
		}
	}
	return len(refs)
}

// The alert rules decode strictly as Prometheus rule groups, and every
// metric they use exists.
func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	have := metricNames(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: alert, expr, severity and summary are required", r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if requireMetricsExist(t, have, "alert "+r.Alert, r.Expr) == 0 {
				t.Errorf("alert %s uses no fleetflow or Temporal metric", r.Alert)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}

// The Grafana dashboard is valid JSON with a query per panel, and every
// metric its queries use exists.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	have := metricNames(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if requireMetricsExist(t, have, "panel "+p.Title, q.Expr) == 0 {
				t.Errorf("panel %q: query %q uses no fleetflow or Temporal metric", p.Title, q.Expr)
			}
		}
	}
	if len(d.Panels) < 8 {
		t.Fatalf("%d panels", len(d.Panels))
	}
}

// Multi-site mode's two configurations load as the workers load them and
// agree: the control plane names every site as an edge site and has no
// broker; the edge worker's --edge-site is in its edge.sites, its bridge
// is on, and it talks to the site's broker; every edge site has a map.
func TestMultiSiteConfigsAgree(t *testing.T) {
	env := podFiles(t)
	central, err := config.Load("overlays/central/temporal.yaml", env)
	if err != nil {
		t.Fatalf("overlays/central/temporal.yaml: %v", err)
	}
	edge, err := config.Load("overlays/edge/temporal.yaml", env)
	if err != nil {
		t.Fatalf("overlays/edge/temporal.yaml: %v", err)
	}
	if len(central.Edge.Sites) == 0 || central.MQTT.URL != "" || central.Worker.Bridge {
		t.Fatalf("the control plane: edge.sites %v, mqtt.url %q, bridge %v; want every site an edge site, no broker, no bridge",
			central.Edge.Sites, central.MQTT.URL, central.Worker.Bridge)
	}
	d := build(t, "edge").deployment(t, "workers-edge")
	cmd := d.Spec.Template.Spec.Containers[0].Command
	site := ""
	for i, a := range cmd {
		if a == "--edge-site" && i+1 < len(cmd) {
			site = cmd[i+1]
		}
	}
	if site == "" || !edge.Edge.Has(site) || !central.Edge.Has(site) {
		t.Fatalf("edge worker --edge-site %q: its config's edge.sites %v and the control plane's %v must name it", site, edge.Edge.Sites, central.Edge.Sites)
	}
	if !edge.Worker.Bridge || !strings.HasPrefix(edge.MQTT.URL, "ssl://") || edge.Temporal.Namespace != central.Temporal.Namespace ||
		edge.TaskQueues != central.TaskQueues {
		t.Fatalf("the edge worker's config: bridge %v, mqtt %q, namespace %q vs %q, task queues %+v vs %+v",
			edge.Worker.Bridge, edge.MQTT.URL, edge.Temporal.Namespace, central.Temporal.Namespace, edge.TaskQueues, central.TaskQueues)
	}
	for _, s := range central.Edge.Sites {
		if _, err := os.Stat("base/sites/" + s + ".yaml"); err != nil {
			t.Fatalf("edge site %s has no map in base/sites: %v", s, err)
		}
	}
}

// podFiles is the environment that points the configuration's files,
// which exist only in the pod (the MQTT TLS files, the trusted keys), at
// empty stand-ins.
func podFiles(t *testing.T) []string {
	dir := t.TempDir()
	var env []string
	for _, f := range []string{"CA_FILE", "CERT_FILE", "KEY_FILE"} {
		path := dir + "/" + f
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "FLEETFLOW_MQTT_TLS_"+f+"="+path)
	}
	return append(env, "FLEETFLOW_ARTIFACTS_TRUSTED_KEYS="+dir)
}
