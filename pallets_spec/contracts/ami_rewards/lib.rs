//! The AMI rewards contract: the MINT balance, published scores, idempotent payouts and challenges.
//!
//! Its ABI is described once in `pallets_spec/description.py`; `pallets_spec/model.py` is the executable model
//! of the same rules (same checks in the same order, same events), and a test compares the three.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
pub mod ami_rewards {
    use ink::prelude::vec::Vec;
    use ink::storage::Mapping;

    /// Scores are quantised to basis points: 0..=10000.
    pub const BASIS_POINTS: u32 = 10_000;
    /// Payout kinds: 0 create, 1 listen, 2 discovery, 3 engagement, 4 royalty.
    pub const PAYOUT_KINDS: u8 = 5;

    /// Why a message was refused. The variant order is the ABI: append only.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// Only the contract owner may do this.
        NotContractOwner,
        /// The caller is not an oracle.
        NotOracle,
        /// The caller is not a validator.
        NotValidator,
        /// A score is above 10000 basis points.
        InvalidScore,
        /// This (token_id, model_version) already has a score.
        AlreadyScored,
        /// This (epoch, batch) was already distributed.
        BatchAlreadyPaid,
        /// A payout id in the batch was already paid.
        PayoutAlreadyPaid,
        /// A batch must hold at least one payout.
        EmptyBatch,
        /// The caller's MINT balance is too low.
        InsufficientBalance,
        /// The same evidence was already filed against this track.
        AlreadyChallenged,
        /// A balance or the total supply would overflow.
        Overflow,
        /// A payout kind is not 0..=4.
        InvalidPayoutKind,
    }

    /// One payout: a unique id, the payee, the MINT amount and its kind (0 create .. 4 royalty).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub struct Payout {
        pub id: [u8; 32],
        pub to: AccountId,
        pub amount: Balance,
        pub kind: u8,
    }

    /// A published score of a track, quantised to basis points.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Score {
        pub novelty_bp: u16,
        pub quality_bp: u16,
        pub model_version: u32,
        pub commitment: [u8; 32],
        pub oracle: AccountId,
    }

    /// A score was published.
    #[ink(event)]
    pub struct ScoreSubmitted {
        #[ink(topic)]
        token_id: u64,
        oracle: AccountId,
        novelty_bp: u16,
        quality_bp: u16,
        model_version: u32,
        commitment: [u8; 32],
    }

    /// One payout was paid.
    #[ink(event)]
    pub struct Paid {
        #[ink(topic)]
        payout_id: [u8; 32],
        #[ink(topic)]
        to: AccountId,
        amount: Balance,
        kind: u8,
        epoch: u32,
    }

    /// A whole batch was paid.
    #[ink(event)]
    pub struct BatchDistributed {
        #[ink(topic)]
        epoch: u32,
        batch: u32,
        count: u32,
        total: Balance,
    }

    /// A validator challenged a score.
    #[ink(event)]
    pub struct Challenged {
        #[ink(topic)]
        challenge_id: u64,
        #[ink(topic)]
        token_id: u64,
        validator: AccountId,
        evidence: [u8; 32],
    }

    /// MINT moved between accounts.
    #[ink(event)]
    pub struct Transfer {
        #[ink(topic)]
        from: AccountId,
        #[ink(topic)]
        to: AccountId,
        amount: Balance,
    }

    /// An oracle was added.
    #[ink(event)]
    pub struct OracleAdded {
        account: AccountId,
    }

    /// An oracle was removed.
    #[ink(event)]
    pub struct OracleRemoved {
        account: AccountId,
    }

    /// A validator was added.
    #[ink(event)]
    pub struct ValidatorAdded {
        account: AccountId,
    }

    /// A validator was removed.
    #[ink(event)]
    pub struct ValidatorRemoved {
        account: AccountId,
    }

    #[ink(storage)]
    pub struct AmiRewards {
        owner: AccountId,
        total_supply: Balance,
        next_challenge_id: u64,
        balances: Mapping<AccountId, Balance>,
        oracles: Mapping<AccountId, ()>,
        validators: Mapping<AccountId, ()>,
        scores: Mapping<(u64, u32), Score>,
        latest_scores: Mapping<u64, Score>,
        paid: Mapping<[u8; 32], ()>,
        paid_batches: Mapping<(u32, u32), ()>,
        challenges: Mapping<(u64, [u8; 32]), u64>,
    }

    impl AmiRewards {
        /// Creates the contract; the caller becomes the contract owner.
        #[ink(constructor)]
        pub fn new() -> Self {
            Self {
                owner: Self::env().caller(),
                total_supply: 0,
                next_challenge_id: 1,
                balances: Mapping::default(),
                oracles: Mapping::default(),
                validators: Mapping::default(),
                scores: Mapping::default(),
                latest_scores: Mapping::default(),
                paid: Mapping::default(),
                paid_batches: Mapping::default(),
                challenges: Mapping::default(),
            }
        }

        /// Publishes a track's score. Oracle only; both scores <= 10000 basis points; one score per
        /// (token_id, model_version).
        #[ink(message)]
        pub fn submit_score(
            &mut self,
            token_id: u64,
            novelty_bp: u16,
            quality_bp: u16,
            model_version: u32,
            commitment: [u8; 32],
        ) -> Result<(), Error> {
            let oracle = self.env().caller();
            self.ensure_oracle(oracle)?;
            if u32::from(novelty_bp) > BASIS_POINTS || u32::from(quality_bp) > BASIS_POINTS {
                return Err(Error::InvalidScore);
            }
            if self.scores.contains((token_id, model_version)) {
                return Err(Error::AlreadyScored);
            }
            let score = Score {
                novelty_bp,
                quality_bp,
                model_version,
                commitment,
                oracle,
            };
            self.scores.insert((token_id, model_version), &score);
            self.latest_scores.insert(token_id, &score);
            self.env().emit_event(ScoreSubmitted {
                token_id,
                oracle,
                novelty_bp,
                quality_bp,
                model_version,
                commitment,
            });
            Ok(())
        }

        /// Pays a batch of payouts in MINT. Oracle only. All or nothing: refuses an empty batch, a
        /// batch (epoch, batch) already paid, a payout id already paid (also twice in the batch), an
        /// unknown kind.
        #[ink(message)]
        pub fn distribute(&mut self, epoch: u32, batch: u32, payouts: Vec<Payout>) -> Result<(), Error> {
            self.ensure_oracle(self.env().caller())?;
            if payouts.is_empty() {
                return Err(Error::EmptyBatch);
            }
            if self.paid_batches.contains((epoch, batch)) {
                return Err(Error::BatchAlreadyPaid);
            }
            // Every check runs before the first write: a refused batch changes nothing.
            let mut total: Balance = 0;
            for (i, payout) in payouts.iter().enumerate() {
                if payout.kind >= PAYOUT_KINDS {
                    return Err(Error::InvalidPayoutKind);
                }
                let repeated = payouts[..i].iter().any(|other| other.id == payout.id);
                if repeated || self.paid.contains(payout.id) {
                    return Err(Error::PayoutAlreadyPaid);
                }
                total = total.checked_add(payout.amount).ok_or(Error::Overflow)?;
                if self.total_supply.checked_add(total).is_none() {
                    return Err(Error::Overflow);
                }
            }
            let count = u32::try_from(payouts.len()).map_err(|_| Error::Overflow)?;
            self.total_supply = self.total_supply.checked_add(total).ok_or(Error::Overflow)?;
            for payout in payouts {
                // Bounded by the total supply checked above, so this cannot overflow.
                let balance = self.balances.get(payout.to).unwrap_or(0);
                self.balances.insert(payout.to, &balance.saturating_add(payout.amount));
                self.paid.insert(payout.id, &());
                self.env().emit_event(Paid {
                    payout_id: payout.id,
                    to: payout.to,
                    amount: payout.amount,
                    kind: payout.kind,
                    epoch,
                });
            }
            self.paid_batches.insert((epoch, batch), &());
            self.env().emit_event(BatchDistributed {
                epoch,
                batch,
                count,
                total,
            });
            Ok(())
        }

        /// Challenges a track's score. Validator only; returns the challenge id (from 1).
        #[ink(message)]
        pub fn challenge(&mut self, token_id: u64, evidence: [u8; 32]) -> Result<u64, Error> {
            let validator = self.env().caller();
            if !self.validators.contains(validator) {
                return Err(Error::NotValidator);
            }
            if self.challenges.contains((token_id, evidence)) {
                return Err(Error::AlreadyChallenged);
            }
            let challenge_id = self.next_challenge_id;
            self.next_challenge_id = challenge_id.checked_add(1).ok_or(Error::Overflow)?;
            self.challenges.insert((token_id, evidence), &challenge_id);
            self.env().emit_event(Challenged {
                challenge_id,
                token_id,
                validator,
                evidence,
            });
            Ok(challenge_id)
        }

        /// Transfers MINT from the caller to `to`.
        #[ink(message)]
        pub fn transfer(&mut self, to: AccountId, amount: Balance) -> Result<(), Error> {
            let from = self.env().caller();
            let from_balance = self.balance_of(from);
            if from_balance < amount {
                return Err(Error::InsufficientBalance);
            }
            self.balances.insert(from, &(from_balance - amount));
            // Read after the debit so that a transfer to oneself keeps the balance unchanged.
            let to_balance = self.balance_of(to);
            self.balances.insert(to, &to_balance.saturating_add(amount));
            self.env().emit_event(Transfer { from, to, amount });
            Ok(())
        }

        /// Adds `account` to the oracle set. Contract owner only.
        #[ink(message)]
        pub fn add_oracle(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.oracles.insert(account, &());
            self.env().emit_event(OracleAdded { account });
            Ok(())
        }

        /// Removes `account` from the oracle set. Contract owner only.
        #[ink(message)]
        pub fn remove_oracle(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.oracles.remove(account);
            self.env().emit_event(OracleRemoved { account });
            Ok(())
        }

        /// Adds `account` to the validator set. Contract owner only.
        #[ink(message)]
        pub fn add_validator(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.validators.insert(account, &());
            self.env().emit_event(ValidatorAdded { account });
            Ok(())
        }

        /// Removes `account` from the validator set. Contract owner only.
        #[ink(message)]
        pub fn remove_validator(&mut self, account: AccountId) -> Result<(), Error> {
            self.ensure_contract_owner()?;
            self.validators.remove(account);
            self.env().emit_event(ValidatorRemoved { account });
            Ok(())
        }

        /// The MINT balance of `account`.
        #[ink(message)]
        pub fn balance_of(&self, account: AccountId) -> Balance {
            self.balances.get(account).unwrap_or(0)
        }

        /// All MINT ever paid out.
        #[ink(message)]
        pub fn total_supply(&self) -> Balance {
            self.total_supply
        }

        /// The latest published score of a track.
        #[ink(message)]
        pub fn score_of(&self, token_id: u64) -> Option<Score> {
            self.latest_scores.get(token_id)
        }

        /// Whether this payout id was paid.
        #[ink(message)]
        pub fn is_paid(&self, payout_id: [u8; 32]) -> bool {
            self.paid.contains(payout_id)
        }

        /// Whether this (epoch, batch) was distributed.
        #[ink(message)]
        pub fn batch_paid(&self, epoch: u32, batch: u32) -> bool {
            self.paid_batches.contains((epoch, batch))
        }

        /// Whether `account` is in the oracle set.
        #[ink(message)]
        pub fn is_oracle(&self, account: AccountId) -> bool {
            self.oracles.contains(account)
        }

        /// Whether `account` is in the validator set.
        #[ink(message)]
        pub fn is_validator(&self, account: AccountId) -> bool {
            self.validators.contains(account)
        }

        /// The contract owner.
        #[ink(message)]
        pub fn owner(&self) -> AccountId {
            self.owner
        }

        fn ensure_contract_owner(&self) -> Result<(), Error> {
            if self.env().caller() != self.owner {
                return Err(Error::NotContractOwner);
            }
            Ok(())
        }

        fn ensure_oracle(&self, account: AccountId) -> Result<(), Error> {
            if !self.oracles.contains(account) {
                return Err(Error::NotOracle);
            }
            Ok(())
        }
    }

    impl Default for AmiRewards {
        fn default() -> Self {
            Self::new()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::test::{default_accounts, recorded_events, set_caller, DefaultAccounts};
        use ink::env::DefaultEnvironment;

        fn accounts() -> DefaultAccounts<DefaultEnvironment> {
            default_accounts::<DefaultEnvironment>()
        }

        fn with_oracle() -> AmiRewards {
            let a = accounts();
            set_caller::<DefaultEnvironment>(a.alice);
            let mut contract = AmiRewards::new();
            contract.add_oracle(a.alice).expect("add oracle");
            contract
        }

        fn payout(id: u8, to: AccountId, amount: Balance) -> Payout {
            Payout {
                id: [id; 32],
                to,
                amount,
                kind: 1,
            }
        }

        #[ink::test]
        fn distribute_pays_once() {
            let a = accounts();
            let mut contract = with_oracle();
            let batch = ink::prelude::vec![payout(1, a.bob, 10), payout(2, a.charlie, 5)];
            assert_eq!(contract.distribute(1, 0, batch.clone()), Ok(()));
            assert_eq!(contract.balance_of(a.bob), 10);
            assert_eq!(contract.total_supply(), 15);
            assert!(contract.is_paid([1; 32]));
            assert!(contract.batch_paid(1, 0));
            // 1 OracleAdded + 2 Paid + 1 BatchDistributed
            assert_eq!(recorded_events().count(), 4);
            assert_eq!(contract.distribute(1, 0, batch), Err(Error::BatchAlreadyPaid));
            let again = ink::prelude::vec![payout(3, a.bob, 1), payout(1, a.bob, 10)];
            assert_eq!(contract.distribute(1, 1, again), Err(Error::PayoutAlreadyPaid));
            // the refused batch changed nothing, not even its first (new) payout
            assert!(!contract.is_paid([3; 32]));
            assert_eq!(contract.balance_of(a.bob), 10);
        }

        #[ink::test]
        fn distribute_refuses_bad_batches() {
            let a = accounts();
            let mut contract = with_oracle();
            assert_eq!(contract.distribute(1, 0, Vec::new()), Err(Error::EmptyBatch));
            let twice = ink::prelude::vec![payout(1, a.bob, 1), payout(1, a.bob, 1)];
            assert_eq!(contract.distribute(1, 0, twice), Err(Error::PayoutAlreadyPaid));
            let mut bad_kind = payout(2, a.bob, 1);
            bad_kind.kind = PAYOUT_KINDS;
            assert_eq!(contract.distribute(1, 0, ink::prelude::vec![bad_kind]), Err(Error::InvalidPayoutKind));
            let overflow = ink::prelude::vec![payout(3, a.bob, Balance::MAX), payout(4, a.bob, 1)];
            assert_eq!(contract.distribute(1, 0, overflow), Err(Error::Overflow));
            set_caller::<DefaultEnvironment>(a.bob);
            let batch = ink::prelude::vec![payout(5, a.bob, 1)];
            assert_eq!(contract.distribute(1, 0, batch), Err(Error::NotOracle));
            assert_eq!(contract.total_supply(), 0);
        }

        #[ink::test]
        fn scores_are_once_per_model_version() {
            let mut contract = with_oracle();
            assert_eq!(contract.submit_score(1, 10_001, 0, 1, [0; 32]), Err(Error::InvalidScore));
            assert_eq!(contract.submit_score(1, 5_000, 6_000, 1, [7; 32]), Ok(()));
            assert_eq!(contract.submit_score(1, 5_000, 6_000, 1, [7; 32]), Err(Error::AlreadyScored));
            assert_eq!(contract.submit_score(1, 4_000, 6_000, 2, [8; 32]), Ok(()));
            assert_eq!(contract.score_of(1).map(|s| s.model_version), Some(2));
        }

        #[ink::test]
        fn challenges_and_transfers() {
            let a = accounts();
            let mut contract = with_oracle();
            assert_eq!(contract.challenge(1, [9; 32]), Err(Error::NotValidator));
            contract.add_validator(a.alice).expect("add validator");
            assert_eq!(contract.challenge(1, [9; 32]), Ok(1));
            assert_eq!(contract.challenge(1, [9; 32]), Err(Error::AlreadyChallenged));
            assert_eq!(contract.challenge(2, [9; 32]), Ok(2));
            contract
                .distribute(1, 0, ink::prelude::vec![payout(1, a.alice, 10)])
                .expect("distribute");
            assert_eq!(contract.transfer(a.bob, 11), Err(Error::InsufficientBalance));
            assert_eq!(contract.transfer(a.bob, 4), Ok(()));
            assert_eq!(contract.balance_of(a.alice), 6);
            assert_eq!(contract.balance_of(a.bob), 4);
        }
    }
}
