/**
 * What a failed verification was about. Each code is a check a reader can act
 * on; docs/trust-model.md explains each one for operators.
 */
export type VerificationCheck =
  | 'malformed' //     the signature, a certificate, the CRL or the manifest does not parse
  | 'too-large' //     an input is larger than any legitimate one (refused before parsing)
  | 'unsupported' //   an algorithm or structure podboot deliberately does not accept
  | 'chain' //         no path from the signer certificate to the trusted root
  | 'ca' //            an issuing certificate is not allowed to issue (basicConstraints, keyUsage, path length)
  | 'eku' //           the signer certificate is not for code signing
  | 'expired' //       a certificate in the chain is past its notAfter
  | 'not-yet-valid' // a certificate in the chain is before its notBefore
  | 'crl' //           a CRL is unusable: bad signature, wrong issuer, out of date
  | 'revoked' //       a certificate in the chain is on its issuer's CRL
  | 'content-type' //  the signed content type is not plain data
  | 'signature' //     the CMS signature over the signed attributes does not verify
  | 'digest' //        the content is not what was signed (messageDigest mismatch)
  | 'manifest'; //     the manifest does not describe this image, this pod, or is past its notAfter

export class VerificationError extends Error {
  override readonly name = 'VerificationError';
  constructor(
    readonly check: VerificationCheck,
    message: string,
  ) {
    super(message);
  }
}
