import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { AgentError } from './tpm-device';

/** What the agent remembers between `enroll` and `renew` (`state.json` in the output directory). */
export const agentStateSchema = z.object({
  deviceId: z.string(),
  server: z.string(),
  akHandle: z.number().int(),
  keyHandle: z.number().int(),
  ekHandle: z.number().int(),
  certificateFile: z.string(),
  chainFile: z.string(),
  notAfter: z.string(),
  updatedAt: z.string(),
});
export type AgentState = z.infer<typeof agentStateSchema>;

/** Files the agent writes into `--out`. */
export const AGENT_FILES = { certificate: 'device-cert.pem', chain: 'chain.pem', state: 'state.json', tss2Key: 'device-key.tss2.pem' } as const;

/** Writes a file atomically (temp + rename) so a crash never leaves half a certificate. */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, file);
}

/** Stores the certificate, chain and state. Returns the paths. */
export async function saveEnrollment(
  outDir: string,
  data: { certificate: string; chain: string; state: Omit<AgentState, 'certificateFile' | 'chainFile' | 'updatedAt'> },
  nowMs: number,
): Promise<AgentState> {
  await mkdir(outDir, { recursive: true, mode: 0o750 });
  const certificateFile = path.join(outDir, AGENT_FILES.certificate);
  const chainFile = path.join(outDir, AGENT_FILES.chain);
  await writeAtomic(certificateFile, data.certificate, 0o644);
  await writeAtomic(chainFile, data.chain, 0o644);
  const state: AgentState = { ...data.state, certificateFile, chainFile, updatedAt: new Date(nowMs).toISOString() };
  await writeAtomic(path.join(outDir, AGENT_FILES.state), JSON.stringify(state, null, 2) + '\n', 0o640);
  return state;
}

/**
 * Writes the device key as a TSS2 PRIVATE KEY file (for OpenVPN/tpm2-openssl). The content is wrapped by this
 * TPM and useless elsewhere, but it is still key material: mode 0600.
 */
export async function saveTss2Key(outDir: string, pem: string): Promise<string> {
  await mkdir(outDir, { recursive: true, mode: 0o750 });
  const file = path.join(outDir, AGENT_FILES.tss2Key);
  await writeAtomic(file, pem, 0o600);
  return file;
}

/** Reads `state.json`, or throws AGENT_NOT_ENROLLED. */
export async function loadState(outDir: string): Promise<AgentState> {
  let text: string;
  try {
    text = await readFile(path.join(outDir, AGENT_FILES.state), 'utf8');
  } catch (e) {
    throw new AgentError('AGENT_NOT_ENROLLED', `No enrollment state in ${outDir}; run "devicegate-agent enroll" first`, e);
  }
  const parsed = agentStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new AgentError('AGENT_STATE_INVALID', `${outDir}/${AGENT_FILES.state} is damaged`);
  return parsed.data;
}
