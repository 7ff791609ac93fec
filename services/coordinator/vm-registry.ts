/**
 * GPU VMs known to the coordinator: which GPU holds each (one drm_gpusvm
 * there) and which process it mirrors. A VM lives in its GPU's process; if
 * that process is lost the VM is gone with it and commands get ENODEV.
 */
import { svmError } from '../../shared/errors.js'

export interface VmEntry {
  vm: number
  gpu: number
  pid: number
  /** The GPU registration generation the VM was created in. */
  generation: number
}

export class VmRegistry {
  private readonly vms = new Map<number, VmEntry>()
  private nextVm = 1

  allocate (gpu: number, pid: number, generation: number): VmEntry {
    const e = { vm: this.nextVm++, gpu, pid, generation }
    this.vms.set(e.vm, e)
    return e
  }

  get (vm: number): VmEntry {
    const e = this.vms.get(vm)
    if (e === undefined) throw svmError('E_NOT_FOUND', `no VM ${vm}`)
    return e
  }

  remove (vm: number): void {
    this.vms.delete(vm)
  }

  ofProcess (pid: number): VmEntry[] {
    return [...this.vms.values()].filter((e) => e.pid === pid)
  }

  get size (): number {
    return this.vms.size
  }
}
