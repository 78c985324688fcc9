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

// loadCredentials reads the hop's identities, certificates and agent.
func loadCredentials(ctx context.Context, ep *Endpoint) (*credentials, error) {
	return loadCredentialsAt(ctx, ep, time.Now())
}

func loadCredentialsAt(ctx context.Context, ep *Endpoint, now time.Time) (*credentials, error) {
	c := &credentials{}
	var explicit *ssh.Certificate
	if ep.Certificate != "" {
		cert, err := loadCertificate(ep.Certificate)
		if err != nil {
			return nil, err
		}
		explicit = cert
	}
	usedExplicit := false
	// offerCert adds cert for signer when it is valid now, or notes why not.
	offerCert := func(cert *ssh.Certificate, signer ssh.Signer, path string) error {
		if why := certValidNow(cert, now); why != "" {
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

	// With an agent, an identity may be a public key whose private half
	// the agent holds (IdentityFile KEY.pub with IdentitiesOnly).
	var fromAgent []ssh.PublicKey
	var fromAgentPaths []string
	for _, path := range ep.Identities {
		if ep.IdentityAgent != "" {
			if pub := publicKeyFile(path); pub != nil {
				fromAgent, fromAgentPaths = append(fromAgent, pub), append(fromAgentPaths, path)
				continue
			}
		}
		signer, err := LoadIdentity(path)
		if err != nil {
			return nil, err
		}
		if explicit != nil && certifies(explicit, signer.PublicKey()) {
			usedExplicit = true
			if err := offerCert(explicit, signer, ep.Certificate); err != nil {
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
			case explicit == nil || !slices.Equal(explicit.Marshal(), cert.Marshal()):
				if err := offerCert(cert, signer, beside); err != nil {
					return nil, err
				}
			}
		}
		c.add(signer, path)
	}

	if ep.IdentityAgent != "" && (len(ep.Identities) == 0 || len(fromAgent) > 0 || (explicit != nil && !usedExplicit)) {
		signers, conn, err := agentSigners(ctx, ep.IdentityAgent, ep.ConnectTimeout)
		if err != nil {
			return nil, err
		}
		c.agent = conn
		found := make([]bool, len(fromAgent))
		for _, s := range signers {
			pub := typedKey(s.PublicKey())
			if cert, ok := pub.(*ssh.Certificate); ok {
				if why := certValidNow(cert, now); why != "" {
					c.notes = append(c.notes, fmt.Sprintf("the agent's certificate %s %s, so it was not offered", ssh.FingerprintSHA256(pub), why))
					continue
				}
			}
			if explicit != nil && !usedExplicit && sameKey(explicit.Key, pub) {
				usedExplicit = true
				if err := offerCert(explicit, s, ep.Certificate); err != nil {
					c.close()
					return nil, err
				}
			}
			switch i := slices.IndexFunc(fromAgent, func(k ssh.PublicKey) bool { return sameKey(k, pub) }); {
			case i >= 0:
				found[i] = true
				c.add(s, "agent, "+fromAgentPaths[i])
			case len(ep.Identities) == 0:
				c.add(s, "agent")
			}
			// Otherwise IdentitiesOnly, as ssh: the agent's other keys and
			// certificates are not offered.
		}
		for i, ok := range found {
			if !ok {
				c.close()
				return nil, &AgentError{Socket: ep.IdentityAgent, Err: fmt.Errorf("holds no private key for %s (%s): add it with ssh-add",
					fromAgentPaths[i], ssh.FingerprintSHA256(fromAgent[i]))}
			}
		}
	}
	if explicit != nil && !usedExplicit {
		c.close()
		return nil, &KeyFileError{Path: ep.Certificate, Fault: FileUnusable, Msg: fmt.Sprintf("certifies key %s, which is neither an identity nor a key of the agent: name the key it was signed for",
			ssh.FingerprintSHA256(explicit.Key))}
	}
	if len(c.signers) == 0 {
		c.close()
		return nil, &AuthError{Hop: ep.String(), Notes: c.notes, Err: errors.New("nothing left to offer")}
	}
	return c, nil
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
