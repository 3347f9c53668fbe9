//! The held rows: a ring of fixed capacity that, once full, overwrites its oldest item in
//! place. Rows are large and own buffers: a deque's pop-front and push-back moved every
//! row twice and let its buffers go, where refilling the oldest slot moves nothing.

pub struct Ring<T> {
    items: Vec<T>,
    /// The oldest item, once full (0 until then).
    head: usize,
    cap: usize,
}

impl<T> Ring<T> {
    pub fn new(cap: usize) -> Ring<T> {
        Ring { items: Vec::new(), head: 0, cap: cap.max(1) }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_full(&self) -> bool {
        self.items.len() == self.cap
    }

    fn physical(&self, i: usize) -> Option<usize> {
        (i < self.items.len()).then(|| (self.head + i) % self.items.len())
    }

    /// The `i`th item, oldest first.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.physical(i).map(|p| &self.items[p])
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.physical(i).map(|p| &mut self.items[p])
    }

    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn back(&self) -> Option<&T> {
        self.get(self.items.len().checked_sub(1)?)
    }

    /// Appends `item`; when full, it overwrites the oldest.
    pub fn push(&mut self, item: T) {
        match self.reuse_oldest() {
            Some(slot) => *slot = item,
            None => self.items.push(item),
        }
    }

    /// When full, the oldest item, which becomes the newest for the caller to refill.
    pub fn reuse_oldest(&mut self) -> Option<&mut T> {
        if self.items.len() < self.cap {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % self.cap;
        Some(&mut self.items[at])
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!((0..r.len()).map(|i| *r.get(i).unwrap()).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!((r.front(), r.back(), r.get(3)), (Some(&2), Some(&4), None));
        r.clear();
        assert_eq!(r.len(), 0);
        assert_eq!(r.reuse_oldest(), None);
        r.push(9);
        assert_eq!(r.front(), Some(&9));
    }
}
