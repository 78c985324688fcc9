package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// credentials are what one hop offers to log in, in order: for each
// identity its certificate then its key (as ssh -i KEY), then the agent's
// keys. Files are read at every connect, so a renewed certificate is used
// without a restart.
type credentials struct {
	signers []ssh.Signer
	labels  []string // per signer, for messages: "SHA256:... (file)"
	notes   []string // certificates not offered, and why
	agent   net.Conn // open until the handshake is done

	now          time.Time // certificates are checked against it
	explicit     *ssh.Certificate
	explicitPath string
	explicitUsed bool // paired with an identity or agent key
}

func (c *credentials) add(s ssh.Signer, from string) {
	c.signers = append(c.signers, s)
	kind := "key"
	if _, ok := typedKey(s.PublicKey()).(*ssh.Certificate); ok {
		kind = "certificate"
	}
	c.labels = append(c.labels, fmt.Sprintf("%s %s (%s)", kind, ssh.FingerprintSHA256(s.PublicKey()), from))
}

// close ends the agent connection, if any.
func (c *credentials) close() {
	if c.agent != nil {
		c.agent.Close()
	}
}

// agentKey is an identity given as a public key whose private half the
// agent holds (IdentityFile KEY.pub with IdentitiesOnly).
type agentKey struct {
	path string
	key  ssh.PublicKey
}

// loadCredentials reads the hop's identities, certificates and agent.
func loadCredentials(ctx context.Context, ep *Endpoint) (*credentials, error) {
	c := &credentials{now: time.Now()}
	if ep.Certificate != "" {
		cert, err := loadCertificate(ep.Certificate)
		if err != nil {
			return nil, err
		}
		c.explicit, c.explicitPath = cert, ep.Certificate
	}
	wanted, err := c.fromFiles(ep)
	if err == nil && ep.IdentityAgent != "" && (len(ep.Identities) == 0 || len(wanted) > 0 || c.explicitUnused()) {
		err = c.fromAgent(ctx, ep, wanted)
	}
	switch {
	case err != nil:
	case c.explicitUnused():
		err = &KeyFileError{Path: ep.Certificate, Fault: FileUnusable, Msg: fmt.Sprintf("certifies key %s, which is neither an identity nor a key of the agent: name the key it was signed for",
			ssh.FingerprintSHA256(c.explicit.Key))}
	case len(c.signers) == 0:
		err = &AuthError{Hop: ep.String(), Notes: c.notes, Err: errors.New("nothing left to offer")}
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *credentials) explicitUnused() bool { return c.explicit != nil && !c.explicitUsed }

// offerCert adds cert for signer when it is valid now, or notes why not.
func (c *credentials) offerCert(cert *ssh.Certificate, signer ssh.Signer, path string) error {
	if why := certValidNow(cert, c.now); why != "" {
		c.notes = append(c.notes, fmt.Sprintf("certificate %s %s, so it was not offered", path, why))
		return nil
	}
	cs, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return &KeyFileError{Path: path, Fault: FileUnusable, Msg: err.Error()}
	}
	c.add(cs, path)
	return nil
}

// fromFiles adds each identity file's certificates and key; with an
// agent, it returns the identities that are public keys, for fromAgent.
func (c *credentials) fromFiles(ep *Endpoint) ([]agentKey, error) {
	var wanted []agentKey
	for _, path := range ep.Identities {
		if ep.IdentityAgent != "" {
			if pub := publicKeyFile(path); pub != nil {
				wanted = append(wanted, agentKey{path: path, key: pub})
				continue
			}
		}
		signer, err := LoadIdentity(path)
		if err != nil {
			return nil, err
		}
		if c.explicit != nil && certifies(c.explicit, signer.PublicKey()) {
			c.explicitUsed = true
			if err := c.offerCert(c.explicit, signer, c.explicitPath); err != nil {
				return nil, err
			}
		}
		// As ssh does with KEY-cert.pub, a certificate beside the key that
		// cannot be used is noted, not fatal: a half-written renewal must
		// not stop the tunnel for good.
		if beside := path + "-cert.pub"; fileExists(beside) {
			cert, err := loadCertificate(beside)
			switch {
			case err != nil:
				c.notes = append(c.notes, err.Error())
			case !certifies(cert, signer.PublicKey()):
				c.notes = append(c.notes, fmt.Sprintf("certificate %s certifies key %s, not %s's %s, so it was not offered",
					beside, ssh.FingerprintSHA256(cert.Key), path, ssh.FingerprintSHA256(signer.PublicKey())))
			case c.explicit == nil || !slices.Equal(c.explicit.Marshal(), cert.Marshal()):
				if err := c.offerCert(cert, signer, beside); err != nil {
					return nil, err
				}
			}
		}
		c.add(signer, path)
	}
	return wanted, nil
}

// fromAgent adds the agent's keys and certificates: all of them without
// identity files; with them, only the wanted keys (IdentitiesOnly, as ssh:
// not the agent's other keys, nor its certificates).
func (c *credentials) fromAgent(ctx context.Context, ep *Endpoint, wanted []agentKey) error {
	signers, conn, err := agentSigners(ctx, ep.IdentityAgent, ep.ConnectTimeout)
	if err != nil {
		return err
	}
	c.agent = conn
	found := make([]bool, len(wanted))
	for _, s := range signers {
		pub := typedKey(s.PublicKey())
		if cert, ok := pub.(*ssh.Certificate); ok {
			if why := certValidNow(cert, c.now); why != "" {
				c.notes = append(c.notes, fmt.Sprintf("the agent's certificate %s %s, so it was not offered", ssh.FingerprintSHA256(pub), why))
				continue
			}
		}
		if c.explicitUnused() && sameKey(c.explicit.Key, pub) {
			c.explicitUsed = true
			if err := c.offerCert(c.explicit, s, c.explicitPath); err != nil {
				return err
			}
		}
		switch i := slices.IndexFunc(wanted, func(w agentKey) bool { return sameKey(w.key, pub) }); {
		case i >= 0:
			found[i] = true
			c.add(s, "agent, "+wanted[i].path)
		case len(ep.Identities) == 0:
			c.add(s, "agent")
		}
	}
	for i, ok := range found {
		if !ok {
			return &AgentError{Socket: ep.IdentityAgent, Err: fmt.Errorf("holds no private key for %s (%s): add it with ssh-add",
				wanted[i].path, ssh.FingerprintSHA256(wanted[i].key))}
		}
	}
	return nil
}

// typedKey parses an agent's key (an *agent.Key, its wire form) into
// x/crypto's own type, so a certificate is an *ssh.Certificate.
func typedKey(k ssh.PublicKey) ssh.PublicKey {
	if typed, err := ssh.ParsePublicKey(k.Marshal()); err == nil {
		return typed
	}
	return k
}

func sameKey(a, b ssh.PublicKey) bool { return slices.Equal(a.Marshal(), b.Marshal()) }

// publicKeyFile is the key in path when it is a public key file, else nil.
func publicKeyFile(path string) ssh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return pub
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
