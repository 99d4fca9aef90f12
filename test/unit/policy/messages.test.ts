import { ADAPTER_REASON_CODES, REASON_CODES } from '../../../src/policy/reasons';
import { CLIENT_MESSAGES, clientMessage, MAX_CLIENT_MESSAGE_BYTES } from '../../../src/policy/messages';

const ALL = [...REASON_CODES, ...ADAPTER_REASON_CODES];
const ID = '7f3a1b2c-0000-4000-8000-000000000000';

describe('client messages', () => {
  it.each(ALL)('has a German and an English text for %s', (code) => {
    expect(CLIENT_MESSAGES[code].de.length).toBeGreaterThan(3);
    expect(CLIENT_MESSAGES[code].en.length).toBeGreaterThan(3);
    expect(CLIENT_MESSAGES[code].de).not.toBe(CLIENT_MESSAGES[code].en);
  });

  it.each(ALL.filter((c) => c !== 'OK'))('renders %s as one bilingual line with the code and an 8-character Ref', (code) => {
    const m = clientMessage(code, ID);
    expect(m).toMatch(/^Zugang verweigert: .+ \/ Access denied: .+ \[[A-Z_]+, Ref 7f3a1b2c\]$/);
    expect(m).toContain(code);
    expect(Buffer.byteLength(m, 'utf8')).toBeLessThanOrEqual(MAX_CLIENT_MESSAGE_BYTES);
    // Safe inside a quoted OpenVPN management argument and a RADIUS string.
    // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
    expect(m).not.toMatch(/["\\\r\n\u0000-\u001f]/);
  });

  it('puts only the first 8 characters of the decision id in the message, never other request data', () => {
    const m = clientMessage('DEVICE_REVOKED', 'abcdef12-long-decision-id-with-"quotes"\nand newline');
    expect(m).toContain('Ref abcdef12]');
    expect(m).not.toContain('quotes');
  });

  it('omits the Ref when there is no decision id', () => {
    expect(clientMessage('INTERNAL_ERROR', null)).toMatch(/\[INTERNAL_ERROR\]$/);
  });

  it('falls back to the INTERNAL_ERROR text for an unknown code (never an empty or allow-like message)', () => {
    expect(clientMessage('NOPE' as never, ID)).toContain(CLIENT_MESSAGES.INTERNAL_ERROR.en.toLowerCase().slice(0, 10));
  });
});
