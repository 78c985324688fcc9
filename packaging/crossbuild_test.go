package packaging

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// elfWant is what the ELF header of a target's binary must say.
var elfWant = map[string]struct {
	machine elf.Machine
	class   elf.Class
	order   binary.ByteOrder
}{
	"amd64":   {elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian},
	"arm64":   {elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian},
	"arm":     {elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian},
	"386":     {elf.EM_386, elf.ELFCLASS32, binary.LittleEndian},
	"riscv64": {elf.EM_RISCV, elf.ELFCLASS64, binary.LittleEndian},
	"mips":    {elf.EM_MIPS, elf.ELFCLASS32, binary.BigEndian},
	"mipsle":  {elf.EM_MIPS, elf.ELFCLASS32, binary.LittleEndian},
}

// TestCrossBuildEveryTarget builds every release target the way `make
// release` does and checks each binary is for the right machine, static,
// stripped, and stamped with the variant (GOARM, GOMIPS) a board needs. It
// also keeps GOARCH=386 building.
func TestCrossBuildEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds eight targets")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("release.sh takes the version from git")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", "scripts/release.sh", "--binaries-only")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "RELEASE_DIR="+out, "VERSION=v0.0.0-crossbuild")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh --binaries-only: %v\n%s", err, b)
	}
	for _, tg := range releaseTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			bin := filepath.Join(out, "rtunnel-v0.0.0-crossbuild-linux-"+tg.name)
			checkELF(t, bin, tg)
			checkBuildSettings(t, bin, tg)
		})
	}
}

func checkELF(t *testing.T, bin string, tg target) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, ok := elfWant[tg.goarch]
	if !ok {
		t.Fatalf("no ELF expectation for GOARCH %s; add it to elfWant", tg.goarch)
	}
	if f.Machine != want.machine || f.Class != want.class || f.ByteOrder != want.order {
		t.Errorf("ELF %v %v %v, want %v %v %v", f.Machine, f.Class, f.ByteOrder, want.machine, want.class, want.order)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("has a %v program header: not a static binary", p.Type)
		}
	}
	if s := f.Section(".symtab"); s != nil {
		t.Errorf("has a .symtab section: not stripped (-s)")
	}
	if s := f.Section(".debug_info"); s != nil {
		t.Errorf("has .debug_info: DWARF not stripped (-w)")
	}
}

func checkBuildSettings(t *testing.T, bin string, tg target) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range bi.Settings {
		got[s.Key] = s.Value
	}
	want := map[string]string{"GOOS": "linux", "GOARCH": tg.goarch, "CGO_ENABLED": "0", "-trimpath": "true", "-tags": "nethttpomithttp2"}
	if k, v, ok := strings.Cut(tg.variant, "="); ok {
		want[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, got[k], v)
		}
	}
	// -trimpath keeps -ldflags out of the build info; -s -w show in the
	// ELF sections (checkELF), the version in the data.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("v0.0.0-crossbuild")) {
		t.Errorf("main.version v0.0.0-crossbuild not in the binary")
	}
	if _, ok := got["vcs.revision"]; ok {
		t.Errorf("go's own VCS stamp present: two checkouts of one commit could differ")
	}
}
