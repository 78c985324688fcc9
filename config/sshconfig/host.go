package sshconfig

// Host is what an alias resolved to: the values `ssh -G` prints for the
// directives rtunnel can use. Fields hold OpenSSH's default where the file
// sets nothing; Set tells which were written, and where.
type Host struct {
	Alias    string // as given (%n)
	HostName string // lowercased, as ssh uses it
	Port     int
	User     string

	IdentityFiles         []string // as written: ssh -G prints them before ~ and tokens; see ExpandPath
	CertificateFiles      []string // as written, like IdentityFiles
	IdentityAgent         string   // expanded; "" when not set
	IdentitiesOnly        bool
	UserKnownHostsFiles   []string // expanded
	GlobalKnownHostsFiles []string
	HostKeyAlias          string
	StrictHostKeyChecking string // as ssh -G prints it: true, false, ask or accept-new
	HashKnownHosts        bool   // names ssh adds to known_hosts (accept-new) are hashed

	// ProxyJump as written ("" when none); Jumps is the resolved chain,
	// first dialed first, each hop resolved as an alias of its own.
	ProxyJump string
	Jumps     []*Host

	ServerAliveInterval  int // seconds; 0 is off
	ServerAliveCountMax  int
	ConnectTimeout       int // seconds; 0 is none (the system's TCP timeout)
	ExitOnForwardFailure bool

	RemoteForwards []Forward
	LocalForwards  []Forward

	// Algorithm lists as written, OpenSSH syntax with its +, - and ^
	// prefixes; "" when not set (the client's defaults).
	Ciphers           string
	KexAlgorithms     string
	MACs              string
	HostKeyAlgorithms string

	// Set maps each directive the file set (lowercase, as ssh -G names it)
	// to where: what rtunnel's own config has to yield to, and what
	// `rtunnel check` shows.
	Set map[string]Source

	// JumpUser and JumpPort are what a ProxyJump spec gave this hop
	// (ssh -l and -p for it); zero for the alias itself.
	JumpUser string
	JumpPort int

	opts Options
}

// Source is the file and line a value came from.
type Source struct {
	File string
	Line int
}

// Options are the local facts ssh takes from the process: the user and
// home directory for %u, %d and ~, and user and port given as -l and -p.
type Options struct {
	LocalUser string
	Home      string
	UID       int
	LocalHost string // gethostname(), for %l and %L
	User      string // like ssh -l: wins over User lines
	Port      int    // like ssh -p: wins over Port lines
}
