import { AppError } from '../../../src/domain/errors';
import { classifySamlError, safeReturnPath } from '../../../src/auth/saml/routes';

describe('safeReturnPath (RelayState / returnTo open-redirect guard)', () => {
  it.each([
    ['/devices', '/devices'],
    ['/devices?status=active&q=x', '/devices?status=active&q=x'],
    ['/', '/'],
  ])('keeps the same-origin path %s', (input, out) => {
    expect(safeReturnPath(input)).toBe(out);
  });

  it.each([
    ['an absolute URL', 'https://evil.example/'],
    ['a protocol-relative URL', '//evil.example/x'],
    ['a backslash trick', '/\\evil.example'],
    ['an embedded backslash', '/a\\b'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a relative path', 'devices'],
    ['a header-splitting newline', '/x\r\nSet-Cookie: a=b'],
    ['a tab', '/\t/evil.example'],
    ['over 80 bytes (SAML RelayState limit)', `/${'a'.repeat(80)}`],
    ['a non-string', ['/a', '/b']],
    ['an empty value', ''],
  ])('replaces %s with /', (_name, input) => {
    expect(safeReturnPath(input)).toBe('/');
  });
});

describe('classifySamlError (node-saml failure → stable code)', () => {
  it.each([
    ['InResponseTo is not valid', 'SAML_UNKNOWN_REQUEST'],
    ['InResponseTo is missing from response', 'SAML_UNKNOWN_REQUEST'],
    ['InResponseTo does not match subjectInResponseTo', 'SAML_UNKNOWN_REQUEST'],
    ['Invalid signature', 'SAML_SIGNATURE_INVALID'],
    ['Invalid document signature', 'SAML_SIGNATURE_INVALID'],
    ['Invalid signature: multiple assertions', 'SAML_SIGNATURE_INVALID'],
    ["Invalid signature: Referenced node does not refer to it's parent element", 'SAML_SIGNATURE_INVALID'],
    ['SAML assertion expired: clocks skewed too much', 'SAML_EXPIRED'],
    ['No valid subject confirmation found among those available in the SAML assertion', 'SAML_EXPIRED'],
    ['SAML assertion not yet valid', 'SAML_NOT_YET_VALID'],
    ['SAML assertion audience mismatch. Expected: a Received: b', 'SAML_AUDIENCE_MISMATCH'],
    ['SAML provider returned Responder error: unspecified', 'SAML_IDP_ERROR'],
    ['something nobody anticipated', 'SAML_RESPONSE_REJECTED'],
  ])('maps "%s" to %s, as unauthorized with the original kept only as cause', (msg, code) => {
    const original = new Error(msg);
    const e = classifySamlError(original);
    expect([e.kind, e.code]).toEqual(['unauthorized', code]);
    expect(e.message).not.toContain(msg);
    expect(e.cause).toBe(original);
  });

  it('passes AppErrors from our own checks through unchanged', () => {
    const mine = new AppError('unauthorized', 'SAML_REPLAYED', 'x');
    expect(classifySamlError(mine)).toBe(mine);
  });
});
