/**
 * Owner groups (drm_pagemap_acquire_owner / drm_pagemap_release_owner): the
 * device-private "owner" a GPU's pages and VMs carry. A GPU joins the first
 * existing group in which it has an interconnect to every member, else starts
 * a new one. Members of a group map each other's VRAM in place; pages of
 * another group go back to RAM on access. Groups never merge or split; a
 * group whose last member leaves is gone, and its owner id with it.
 */
export interface OwnerGroup { owner: number, members: number[] }

export class OwnerGroups {
  private groups: OwnerGroup[] = []
  private nextOwner = 1

  constructor (private readonly linked: (a: number, b: number) => boolean) {}

  acquire (gpu: number): number {
    const current = this.ownerOf(gpu)
    if (current !== null) return current
    for (const g of this.groups) {
      if (g.members.every((m) => this.linked(gpu, m))) {
        g.members.push(gpu)
        return g.owner
      }
    }
    const g = { owner: this.nextOwner++, members: [gpu] }
    this.groups.push(g)
    return g.owner
  }

  release (gpu: number): void {
    for (const g of this.groups) {
      const i = g.members.indexOf(gpu)
      if (i >= 0) g.members.splice(i, 1)
    }
    this.groups = this.groups.filter((g) => g.members.length > 0)
  }

  ownerOf (gpu: number): number | null {
    for (const g of this.groups) if (g.members.includes(gpu)) return g.owner
    return null
  }

  list (): OwnerGroup[] {
    return this.groups.map((g) => ({ owner: g.owner, members: [...g.members] }))
  }
}
