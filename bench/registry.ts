import type { Bench } from './bench.js';
import { dhcpBench } from './dhcp.js';
import { dhcpPackageEvidence } from './evidence/dhcp-package.js';
import { verifyBench } from './verify.js';
import { tftpBench } from './tftp.js';
import { tftpPackageEvidence } from './evidence/tftp-package.js';
import { labBench } from './lab.js';
import { debianBench } from './debian.js';
import { scaleBench } from './scale.js';
import { httpsBench } from './https.js';
import { stormBench } from './storm.js';

// One entry per `npm run bench -- NAME`.
export const benches: Bench[] = [dhcpBench, dhcpPackageEvidence, verifyBench, tftpBench, tftpPackageEvidence, scaleBench, httpsBench, stormBench, labBench, debianBench];
