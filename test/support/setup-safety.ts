import { forbidKernelTrafficOffLoopback } from '@stepwire/cli/safety';

// Every test worker: no kernel socket of this process may reach beyond loopback.
forbidKernelTrafficOffLoopback();
