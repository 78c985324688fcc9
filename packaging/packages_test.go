package packaging

import (
	"archive/tar"
	"compress/gzip"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The package checks read the packages of a built release (make
// release-test): metadata, file lists, maintainer scripts, and the binary
// inside, which must be the right architecture.

func TestReleaseDebs(t *testing.T) {
	dir := releaseDir(t)
	requireTools(t, "dpkg-deb", "tar")
	// deb arch -> GOARCH and variant of the binary inside.
	want := map[string][2]string{"amd64": {"amd64", ""}, "arm64": {"arm64", ""}, "armhf": {"arm", "GOARM=6"}}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	seen := map[string]bool{}
	for _, deb := range debs {
		arch := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Architecture"))
		seen[arch] = true
		t.Run(arch, func(t *testing.T) {
			w, ok := want[arch]
			if !ok {
				t.Fatalf("%s: unexpected Architecture %q", deb, arch)
			}
			if !strings.HasSuffix(deb, "_"+arch+".deb") {
				t.Errorf("%s: file name does not end in _%s.deb", deb, arch)
			}
			info := run(t, "dpkg-deb", "-I", deb)
			for _, s := range []string{"conffiles", "preinst", "postinst", "prerm", "postrm", "Package: rtunnel"} {
				if !strings.Contains(info, s) {
					t.Errorf("dpkg-deb -I lacks %q:\n%s", s, info)
				}
			}
			if cf := run(t, "sh", "-c", `dpkg-deb --ctrl-tarfile "$0" | tar -xOf - ./conffiles`, deb); cf != "/etc/rtunnel/rtunnel.yaml\n" {
				t.Errorf("conffiles %q, want only /etc/rtunnel/rtunnel.yaml", cf)
			}
			list := run(t, "dpkg-deb", "-c", deb)
			for _, f := range []string{"./usr/bin/rtunnel", "./usr/lib/systemd/system/rtunnel.service", "./usr/lib/systemd/system/rtunnel@.service",
				"./usr/lib/sysusers.d/rtunnel.conf", "./usr/lib/tmpfiles.d/rtunnel.conf", "./etc/rtunnel/rtunnel.yaml"} {
				if !strings.Contains(list, " "+f+"\n") {
					t.Errorf("dpkg-deb -c lacks %s", f)
				}
			}
			bin := filepath.Join(t.TempDir(), "rtunnel")
			run(t, "sh", "-c", `dpkg-deb --fsys-tarfile "$0" | tar -xOf - ./usr/bin/rtunnel >"$1"`, deb, bin)
			checkBinaryArch(t, bin, w[0], w[1])
		})
	}
	for arch := range want {
		if !seen[arch] {
			t.Errorf("no .deb for %s in %s", arch, dir)
		}
	}
}

func TestReleaseRPMs(t *testing.T) {
	dir := releaseDir(t)
	requireTools(t, "rpm", "rpm2cpio", "cpio")
	want := map[string][2]string{"x86_64": {"amd64", ""}, "aarch64": {"arm64", ""}, "armv7hl": {"arm", "GOARM=7"}}
	rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
	seen := map[string]bool{}
	for _, rpm := range rpms {
		arch := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{ARCH}", rpm))
		seen[arch] = true
		t.Run(arch, func(t *testing.T) {
			w, ok := want[arch]
			if !ok {
				t.Fatalf("%s: unexpected arch %q", rpm, arch)
			}
			info := run(t, "rpm", "-qpil", rpm)
			for _, s := range []string{"Name        : rtunnel", "/usr/bin/rtunnel", "/usr/lib/systemd/system/rtunnel.service", "/etc/rtunnel/rtunnel.yaml"} {
				if !strings.Contains(info, s) {
					t.Errorf("rpm -qpil lacks %q:\n%s", s, info)
				}
			}
			if cf := run(t, "rpm", "-qpc", rpm); cf != "/etc/rtunnel/rtunnel.yaml\n" {
				t.Errorf("rpm -qpc %q, want only /etc/rtunnel/rtunnel.yaml", cf)
			}
			scripts := run(t, "rpm", "-qp", "--scripts", rpm)
			for _, s := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
				if !strings.Contains(scripts, s) {
					t.Errorf("rpm --scripts lacks %s", s)
				}
			}
			bin := filepath.Join(t.TempDir(), "rtunnel")
			// nfpm's cpio payload names files with a leading "/".
			run(t, "sh", "-c", `rpm2cpio "$0" | cpio -i --quiet --to-stdout /usr/bin/rtunnel >"$1"`, rpm, bin)
			checkBinaryArch(t, bin, w[0], w[1])
		})
	}
	for arch := range want {
		if !seen[arch] {
			t.Errorf("no .rpm for %s in %s", arch, dir)
		}
	}
}

// requireTools fails: the release tests run only in make release-test,
// after scripts/install-deps.sh --release.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: scripts/install-deps.sh --release installs it", tool)
		}
	}
}

// An .apk is gzip streams of tar, control (.PKGINFO and scripts) first.
func TestReleaseAPKs(t *testing.T) {
	dir := releaseDir(t)
	want := map[string][2]string{"x86_64": {"amd64", ""}, "aarch64": {"arm64", ""}, "armv7": {"arm", "GOARM=7"},
		"armhf": {"arm", "GOARM=6"}, "x86": {"386", ""}, "riscv64": {"riscv64", ""}}
	apks, _ := filepath.Glob(filepath.Join(dir, "*.apk"))
	if len(apks) != len(want) {
		t.Errorf("%d .apk files, want %d: %v", len(apks), len(want), apks)
	}
	for _, apk := range apks {
		files := readTarGz(t, apk)
		info := parsePkgInfo(string(files[".PKGINFO"]))
		t.Run(info["arch"], func(t *testing.T) {
			w, ok := want[info["arch"]]
			if !ok {
				t.Fatalf("%s: unexpected arch %q", apk, info["arch"])
			}
			if v := info["pkgver"]; strings.ContainsAny(v, "~+") || !strings.HasSuffix(v, "-r1") {
				t.Errorf("pkgver %q: apk versions have no ~ or + and end in -rN", v)
			}
			for _, f := range []string{".pre-install", ".post-install", ".post-upgrade", ".pre-deinstall", "etc/init.d/rtunnel", "etc/rtunnel/rtunnel.yaml", "usr/bin/rtunnel"} {
				if _, ok := files[f]; !ok {
					t.Errorf("lacks %s (has %v)", f, keys(files))
				}
			}
			for _, f := range []string{".pre-install", ".post-install", ".post-upgrade", ".pre-deinstall", "etc/init.d/rtunnel"} {
				shSyntax(t, f, files[f])
			}
			if !strings.HasPrefix(string(files["etc/init.d/rtunnel"]), "#!/sbin/openrc-run\n") {
				t.Errorf("etc/init.d/rtunnel is not an OpenRC script")
			}
			bin := filepath.Join(t.TempDir(), "rtunnel")
			writeExec(t, bin, string(files["usr/bin/rtunnel"]))
			checkBinaryArch(t, bin, w[0], w[1])
		})
	}
}

// An OpenWrt .ipk is a tar.gz of debian-binary, control.tar.gz, data.tar.gz.
func TestReleaseIPKs(t *testing.T) {
	dir := releaseDir(t)
	want := map[string][2]string{"x86_64": {"amd64", ""}, "aarch64_cortex-a53": {"arm64", ""},
		"arm_cortex-a7_neon-vfpv4": {"arm", "GOARM=7"}, "mips_24kc": {"mips", "GOMIPS=softfloat"}, "mipsel_24kc": {"mipsle", "GOMIPS=softfloat"}}
	ipks, _ := filepath.Glob(filepath.Join(dir, "*.ipk"))
	if len(ipks) != len(want) {
		t.Errorf("%d .ipk files, want %d: %v", len(ipks), len(want), ipks)
	}
	for _, ipk := range ipks {
		outer := readTarGz(t, ipk)
		ctl := readTarGzBytes(t, outer["control.tar.gz"])
		data := readTarGzBytes(t, outer["data.tar.gz"])
		control := parseControl(string(ctl["control"]))
		t.Run(control["Architecture"], func(t *testing.T) {
			w, ok := want[control["Architecture"]]
			if !ok {
				t.Fatalf("%s: unexpected Architecture %q", ipk, control["Architecture"])
			}
			if string(outer["debian-binary"]) != "2.0\n" {
				t.Errorf("debian-binary %q", outer["debian-binary"])
			}
			if string(ctl["conffiles"]) != "/etc/rtunnel/rtunnel.yaml\n" {
				t.Errorf("conffiles %q", ctl["conffiles"])
			}
			for _, f := range []string{"postinst", "prerm"} {
				shSyntax(t, f, ctl[f])
			}
			for _, f := range []string{"etc/init.d/rtunnel", "etc/rtunnel/rtunnel.yaml", "usr/bin/rtunnel"} {
				if _, ok := data[f]; !ok {
					t.Errorf("data lacks %s (has %v)", f, keys(data))
				}
			}
			if len(data) != 3 {
				t.Errorf("data holds %v; flash is small, want only the binary, init script and config", keys(data))
			}
			if !strings.HasPrefix(string(data["etc/init.d/rtunnel"]), "#!/bin/sh /etc/rc.common\n") {
				t.Errorf("etc/init.d/rtunnel is not a procd (rc.common) script")
			}
			shSyntax(t, "etc/init.d/rtunnel", data["etc/init.d/rtunnel"])
			bin := filepath.Join(t.TempDir(), "rtunnel")
			writeExec(t, bin, string(data["usr/bin/rtunnel"]))
			checkBinaryArch(t, bin, w[0], w[1])
		})
	}
}

func checkBinaryArch(t *testing.T, bin, goarch, variant string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("the packaged binary: %v", err)
	}
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	if s["GOARCH"] != goarch {
		t.Errorf("packaged binary GOARCH=%s, want %s", s["GOARCH"], goarch)
	}
	if k, v, ok := strings.Cut(variant, "="); ok && s[k] != v {
		t.Errorf("packaged binary %s=%s, want %s", k, s[k], v)
	}
}

func shSyntax(t *testing.T, name string, script []byte) {
	t.Helper()
	if len(script) == 0 {
		t.Errorf("%s missing or empty", name)
		return
	}
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(string(script))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", name, err, out)
	}
}

func readTarGz(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readTarGzBytes(t, b)
}

// readTarGzBytes reads every regular file of (possibly several
// concatenated) gzip-compressed tar streams, names without "./".
func readTarGzBytes(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = data
	}
	return files
}

func parsePkgInfo(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			m[k] = v
		}
	}
	return m
}

func parseControl(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
