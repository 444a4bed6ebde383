package kubernetes

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifests decodes every YAML document of every file here strictly: an
// unknown or misspelt field, a duplicate key or a wrong type fails, as
// `kubectl apply --validate=strict` would.
type manifests struct {
	sts      []appsv1.StatefulSet
	services []corev1.Service
	pdbs     []policyv1.PodDisruptionBudget
}

func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			var target any
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/StatefulSet":
				m.sts = append(m.sts, appsv1.StatefulSet{})
				target = &m.sts[len(m.sts)-1]
			case "v1/Service":
				m.services = append(m.services, corev1.Service{})
				target = &m.services[len(m.services)-1]
			case "policy/v1/PodDisruptionBudget":
				m.pdbs = append(m.pdbs, policyv1.PodDisruptionBudget{})
				target = &m.pdbs[len(m.pdbs)-1]
			default:
				t.Fatalf("%s doc %d: unexpected kind %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := strictDecode([]byte(doc), target); err != nil {
				t.Fatalf("%s doc %d (%s): strict decode: %v", f, i, tm.Kind, err)
			}
		}
	}
	return m
}

// strictDecode is what the API server's strict field validation does:
// YAML to JSON refusing duplicate keys, then JSON into the API type with
// sigs.k8s.io/json, which (unlike encoding/json and so sigs.k8s.io/yaml's
// UnmarshalStrict) matches field names case-sensitively and refuses
// unknown fields.
func strictDecode(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, into)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestStrictDecodeCatchesTypos makes sure the decoding above can fail.
func TestStrictDecodeCatchesTypos(t *testing.T) {
	var s corev1.Service
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nspec:\n  clusterIp: None\n",          // wrong case
		"apiVersion: v1\nkind: Service\nspec:\n  clusterIPs2: [None]\n",      // unknown field
		"apiVersion: v1\nkind: Service\nspec:\n  type: A\n  type: B\n",       // duplicate key
		"apiVersion: v1\nkind: Service\nspec:\n  ports:\n    - port: http\n", // wrong type
	} {
		if err := strictDecode([]byte(doc), &s); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func TestManifests(t *testing.T) {
	m := load(t)
	if len(m.sts) != 1 || len(m.pdbs) != 1 || len(m.services) != 2 {
		t.Fatalf("want 1 StatefulSet, 2 Services, 1 PodDisruptionBudget; got %d, %d, %d", len(m.sts), len(m.services), len(m.pdbs))
	}
	sts := m.sts[0]
	pod := sts.Spec.Template
	podLabels := labels.Set(pod.Labels)

	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods %v (%v)", sts.Spec.Selector, pod.Labels, err)
	}
	var headless *corev1.Service
	for i, s := range m.services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects %v, not the pods %v", s.Name, s.Spec.Selector, pod.Labels)
		}
		if s.Name == sts.Spec.ServiceName {
			headless = &m.services[i]
		}
	}
	if headless == nil {
		t.Fatalf("no Service named %q (the StatefulSet's serviceName)", sts.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless Service clusterIP = %q, want None", headless.Spec.ClusterIP)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Error("headless Service must publish not-ready addresses: pods resolve each other while starting")
	}

	pdb := m.pdbs[0]
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !psel.Matches(podLabels) {
		t.Errorf("PDB selector %v does not match the pods %v", pdb.Spec.Selector, pod.Labels)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable = %v, want 1", pdb.Spec.MaxUnavailable)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != "dynago:dev" {
		t.Errorf("image = %q, want dynago:dev (make image)", c.Image)
	}
	httpPort := int32(0)
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if want := ":" + strconv.Itoa(int(httpPort)); !strings.HasSuffix(env["DYNAGO_HTTP_ADDR"], want) {
		t.Errorf("DYNAGO_HTTP_ADDR %q does not listen on the http port %d", env["DYNAGO_HTTP_ADDR"], httpPort)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no HTTP probe for %s", name)
			continue
		}
		if probe.HTTPGet.Path != name || (probe.HTTPGet.Port.StrVal != "http" && probe.HTTPGet.Port.IntValue() != int(httpPort)) {
			t.Errorf("probe for %s goes to %s on port %v, want the http port", name, probe.HTTPGet.Path, probe.HTTPGet.Port.String())
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("no CPU or memory requests")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("container must run as non-root with a read-only root filesystem")
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	if env["DYNAGO_DATA_DIR"] == "" || mounts[env["DYNAGO_DATA_DIR"]] == "" {
		t.Errorf("data dir %q is not a mounted volume", env["DYNAGO_DATA_DIR"])
	}
	claims := map[string]bool{}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
	}
	if !claims[mounts[env["DYNAGO_DATA_DIR"]]] {
		t.Errorf("the data volume %q is not a PersistentVolumeClaim template", mounts[env["DYNAGO_DATA_DIR"]])
	}
	secretVol := ""
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			secretVol = v.Name
		}
	}
	if secretVol == "" || mounts["/certs"] != secretVol {
		t.Errorf("no Secret mounted at /certs (volumes %v, mounts %v)", pod.Spec.Volumes, mounts)
	}
	// Advertised addresses are the pod's stable DNS name, never a wildcard.
	for _, k := range []string{"DYNAGO_ADVERTISE_HTTP", "DYNAGO_ADVERTISE_RPC", "DYNAGO_ADVERTISE_GOSSIP"} {
		if !strings.HasPrefix(env[k], "$(POD_NAME)."+sts.Spec.ServiceName+".$(POD_NAMESPACE).svc.cluster.local:") {
			t.Errorf("%s = %q, want the pod's name under the headless Service", k, env[k])
		}
	}

	// Every DYNAGO_* variable is one the server reads: a misspelt name
	// would be silently ignored.
	known := serverEnvNames(t)
	var names []string
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasPrefix(n, "DYNAGO_") && !known[n] {
			t.Errorf("env %s is not a variable `dynago server` reads (it knows %d)", n, len(known))
		}
	}
	// And their values parse: run the server's own flag parsing with this
	// environment (the pod's $(VAR) references substituted) and --help,
	// which exits 0 only if every variable was accepted.
	out, code := dynago(t, podEnv(env), "server", "--help")
	if code != 0 {
		t.Errorf("dynago server with the manifest's environment refused it (exit %d):\n%s", code, out)
	}
}

func podEnv(env map[string]string) []string {
	r := strings.NewReplacer("$(POD_NAME)", "dynago-0", "$(POD_NAMESPACE)", "default")
	var out []string
	for k, v := range env {
		if strings.HasPrefix(k, "DYNAGO_") {
			out = append(out, k+"="+r.Replace(v))
		}
	}
	return out
}

var binary, binDir string

// TestMain removes the binary the tests built, once all have run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// dynago runs the dynago binary, built once from the main module.
func dynago(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if binary == "" {
		dir, err := os.MkdirTemp("", "dynago-k8s-test")
		if err != nil {
			t.Fatal(err)
		}
		binDir, binary = dir, filepath.Join(dir, "dynago")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/dynago")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building dynago: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("dynago %v did not exit within 30 s", args)
	}
	return buf.String(), cmd.ProcessState.ExitCode()
}

// serverEnvNames lists the DYNAGO_* variables `dynago server --help` names.
func serverEnvNames(t *testing.T) map[string]bool {
	out, code := dynago(t, nil, "server", "--help")
	if code != 0 {
		t.Fatalf("dynago server --help: exit %d\n%s", code, out)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(env (DYNAGO_[A-Z0-9_]+)`).FindAllStringSubmatch(out, -1) {
		known[m[1]] = true
	}
	if len(known) < 20 {
		t.Fatalf("only %d DYNAGO_* variables in `dynago server --help`:\n%s", len(known), out)
	}
	return known
}

// TestSystemdEnvFile checks the systemd example the same way: every
// variable is one the server reads and every value parses.
func TestSystemdEnvFile(t *testing.T) {
	raw, err := os.ReadFile("../systemd/dynago.env")
	if err != nil {
		t.Fatal(err)
	}
	known := serverEnvNames(t)
	var env []string
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, _, ok := strings.Cut(l, "=")
		if !ok || !known[name] {
			t.Errorf("dynago.env: %q is not a variable `dynago server` reads", l)
		}
		env = append(env, l)
	}
	if len(env) < 5 {
		t.Fatalf("dynago.env sets only %d variables", len(env))
	}
	if out, code := dynago(t, env, "server", "--help"); code != 0 {
		t.Errorf("dynago server refused dynago.env (exit %d):\n%s", code, out)
	}
}
