/**
 * The identity layer: the daemon's certificate authority, client certificates,
 * the challenge–response proof of possession on the daemon socket, and the
 * code-signing requirement for service directories. See docs/trust-model.md.
 *
 * Broker and daemon side only: this layer imports node-forge, and a helper's
 * runtime (`bulkhead/service`) must never import it.
 * @module
 */
export {
  CertificateAuthority,
  CA_DEFAULTS,
  CA_FILES,
  ISSUE_DEFAULTS,
  NOT_BEFORE_SKEW_MS,
  RSA_BITS,
  type CertificateAuthorityOptions,
  type IssueOptions,
  type IssuedIdentity,
  type VerifiedClient,
} from './ca.js';
export { IDENTITY_NAME_PATTERN, certificateFingerprint } from './certificate.js';
export { identityPaths, readIdentity, writeIdentity, type IdentityFiles, type IdentityPaths } from './files.js';
export {
  MAX_CONTEXT_FIELD_BYTES,
  NONCE_BYTES,
  PROOF_DOMAIN,
  answerChallenge,
  authenticateClient,
  createChallenge,
  proofPayload,
  signProof,
  verifyProof,
  type Challenge,
  type ChallengeAnswer,
  type ProofContext,
} from './proof.js';
export {
  CODESIGN_DOMAIN,
  DEFAULT_SKIP,
  MAX_SIGNATURE_FILE_BYTES,
  MAX_SIGNED_FILES,
  SIGNATURE_FILE,
  signServiceDir,
  verifyServiceDir,
  type CodeRequirement,
  type CodeSignatureFailure,
  type SignOptions,
  type SignedManifest,
  type VerifiedServiceDir,
} from './code-signing.js';
