// polkadot-js against the devnet: connect, read //Alice, send a mortal transfer to //Bob until finalized.
// Usage: node check.mjs ws://127.0.0.1:PORT   -> prints one JSON line with what it saw; exit code 0 on success.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const url = process.argv[2];
const timer = setTimeout(() => { console.error('timeout'); process.exit(3); }, 60000);

await cryptoWaitReady();
const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
const keyring = new Keyring({ type: 'sr25519' });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');
const before = (await api.query.system.account(bob.address)).data.free.toBigInt();
const chain = (await api.rpc.system.chain()).toString();
const result = await new Promise((resolve, reject) => {
  const statuses = [];
  api.tx.balances.transferKeepAlive(bob.address, 12345678901234n)
    .signAndSend(alice, { era: 64 }, ({ status, events, dispatchError }) => {
      statuses.push(status.type);
      if (status.isFinalized) {
        resolve({
          statuses,
          block: status.asFinalized.toHex(),
          events: events.map(({ event }) => `${event.section}.${event.method}`),
          failed: dispatchError ? dispatchError.toString() : null,
        });
      }
    }).catch(reject);
});
const after = (await api.query.system.account(bob.address)).data.free.toBigInt();
console.log(JSON.stringify({ chain, specName: api.runtimeVersion.specName.toString(),
  moved: (after - before).toString(), ...result }));
clearTimeout(timer);
await api.disconnect();
process.exit(0);
